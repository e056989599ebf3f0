# 3D feature extractor for generation metrics on Occ3D-nuScenes merged to DynamicCity's 12 slots
# (free 0 + 11 classes, class_merge='occ3d_nuscenes_to_dynamiccity'): the vocabulary of
# configs/dynamiccity/dynamiccity_dit_8xb16-1200e_occ3d-nuscenes.py, whose samples it scores.
# dataset_name enters the version: numbers of extractors trained on other data are never compared.
_base_ = [
    '../_base_/datasets/occ3d_nuscenes.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/schedules/feature_extractor_adamw_20e.py', '../_base_/default_runtime.py'
]
vocabulary = 'dynamiccity_nuscenes'
num_classes = 12
free_label = 0
model = dict(num_classes=12, free_label=0, dataset_name='occ3d_nuscenes_dynamiccity12',
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12))
train_dataloader = dict(batch_size=4,
                        dataset=dict(class_merge='occ3d_nuscenes_to_dynamiccity'))
val_dataloader = None  # no validation: the extractor has its own objective
test_dataloader = None
