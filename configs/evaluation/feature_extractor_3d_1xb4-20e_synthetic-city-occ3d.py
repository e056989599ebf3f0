# 3D feature extractor for generation metrics on the synthetic city written in Occ3D-nuScenes'
# format (200 x 200 x 16 voxels of 0.4 m, 18 classes, free = 17): the vocabulary of
# configs/uniscene/uniscene_dit_8xb4-1200e_synthetic-city-occ3d.py, whose samples it scores.
# dataset_name enters the version: numbers of extractors trained on other data are never compared.
#   python tools/train.py configs/evaluation/feature_extractor_3d_1xb4-20e_synthetic-city-occ3d.py
_base_ = [
    '../_base_/datasets/synthetic_city.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/schedules/feature_extractor_adamw_20e.py', '../_base_/default_runtime.py'
]
vocabulary = 'occ3d_nuscenes'
num_classes = 18
free_label = 17
grid_size = (200, 200, 16)
model = dict(num_classes=18, free_label=17, dataset_name='synthetic_city_occ3d18',
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18))
train_dataloader = dict(batch_size=4,
                        dataset=dict(grid_size=grid_size, preset='occ3d_nuscenes',
                                     vocabulary=vocabulary, masks=()))
val_dataloader = None  # no validation: the extractor has its own objective
test_dataloader = None
