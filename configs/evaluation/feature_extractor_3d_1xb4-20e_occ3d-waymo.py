# 3D feature extractor for generation metrics on Occ3D-Waymo (0.4 m, DynamicCity's 9-class merge
# + free 0): the vocabulary of configs/dynamiccity/dynamiccity_dit_8xb16-1200e_occ3d-waymo.py.
# dataset_name enters the version: numbers of extractors trained on other data are never compared.
_base_ = [
    '../_base_/datasets/occ3d_waymo.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/schedules/feature_extractor_adamw_20e.py', '../_base_/default_runtime.py'
]
model = dict(num_classes=10, free_label=0, dataset_name='occ3d_waymo_dynamiccity10',
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=10))
train_dataloader = dict(batch_size=4)
val_dataloader = None  # no validation: the extractor has its own objective
test_dataloader = None
