# 2D feature extractor for generation metrics on Occ3D-nuScenes (18 classes, free = 17).
# dataset_name enters the version: numbers of extractors trained on other data are never
# compared.
_base_ = [
    '../_base_/datasets/occ3d_nuscenes.py', '../_base_/models/feature_extractor_2d.py',
    '../_base_/default_runtime.py'
]
model = dict(num_classes=18, free_label=17, dataset_name='occ3d_nuscenes18',
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18))
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=20, eta_min=1e-5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
