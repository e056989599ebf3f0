# Voxel (3D) feature extractor at the reference size on the CarlaSC-sized synthetic city
# (16 x 128 x 128 x 8). Swap the dataset base for a real dataset config to train the
# extractor that reports real-data numbers (and set dataset_name accordingly: it enters
# the version, so numbers from different training sets are never compared).
_base_ = [
    '../_base_/datasets/synthetic_city.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/default_runtime.py'
]
model = dict(dataset_name='synthetic_city')
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
