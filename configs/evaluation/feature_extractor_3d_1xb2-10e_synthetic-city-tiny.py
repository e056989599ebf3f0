# Voxel (3D) feature extractor trained on the tiny synthetic city (CPU-sized; what the tests run).
# Train:  python tools/train.py \
#             configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py
# Use:    GenerationMetric(extractor=<this model dict>, checkpoint=work_dirs/...)
_base_ = [
    '../_base_/datasets/synthetic_city_tiny.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/schedules/feature_extractor_adamw_20e.py', '../_base_/default_runtime.py'
]
model = dict(num_classes=12, free_label=0, dataset_name='synthetic_city_tiny', feat_dim=64,
             base_channels=16, num_stages=3, layout_grid=4,
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12))
param_scheduler = None  # constant LR for the short CPU run
train_cfg = dict(max_epochs=10)
default_hooks = dict(logger=dict(type='LoggerHook', interval=4),
                     checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1))
val_dataloader = None  # no validation: the extractor has its own objective
test_dataloader = None
