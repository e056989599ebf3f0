# BEV feature extractor trained on the tiny synthetic city (CPU-sized; what the tests run).
# Train:  python tools/train.py \
#             configs/evaluation/feature_extractor_2d_1xb2-10e_synthetic-city-tiny.py
# Use:    GenerationMetric(extractor=<this model dict>, checkpoint=work_dirs/.../epoch_10.pth)
_base_ = [
    '../_base_/datasets/synthetic_city_tiny.py', '../_base_/models/feature_extractor_2d.py',
    '../_base_/default_runtime.py'
]
model = dict(num_classes=12, free_label=0, dataset_name='synthetic_city_tiny', feat_dim=64,
             base_channels=16, num_stages=3, layout_grid=4,
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
# the extractor is trained on its own objective; nothing to validate with occupancy metrics
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(logger=dict(type='LoggerHook', interval=4),
                     checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1))
