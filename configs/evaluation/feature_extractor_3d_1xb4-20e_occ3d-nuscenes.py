# 3D feature extractor for generation metrics on Occ3D-nuScenes (18 classes, free = 17).
# dataset_name enters the version: numbers of extractors trained on other data are never
# compared.
_base_ = [
    '../_base_/datasets/occ3d_nuscenes.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/schedules/feature_extractor_adamw_20e.py', '../_base_/default_runtime.py'
]
model = dict(num_classes=18, free_label=17, dataset_name='occ3d_nuscenes18',
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18))
train_dataloader = dict(batch_size=4)
val_dataloader = None  # no validation: the extractor has its own objective
test_dataloader = None
