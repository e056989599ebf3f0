# Tiny OccWorld world model on the tiny synthetic city (32 x 32 x 8 voxels, 12 classes, free 0),
# on the frozen tiny VQ-VAE of occworld_vqvae_tiny_synthetic-city.py (16 x 16 tokens of width
# 16, 64 codes): U-Net widths (16, 32, 64) at 16 / 8 / 4, 2 temporal and 1 pose layer a level,
# 2 heads, a context of 7 frames. Trains on 8-frame windows (7 + 1) on a CPU in about a minute;
# tests by forecasting 3 history frames -> 3 future frames (steps 1 / 2 / 3; the metrics call a
# step a "second": frames_per_second=1).
#   python tools/train.py configs/occworld/occworld_vqvae_tiny_synthetic-city.py
#   python tools/train.py configs/occworld/occworld_wm_tiny_synthetic-city.py \
#       --cfg-options model.tokenizer_ckpt=work_dirs/occworld_vqvae_tiny_synthetic-city
#   python tools/test.py configs/occworld/occworld_wm_tiny_synthetic-city.py \
#       work_dirs/occworld_wm_tiny_synthetic-city --out forecast.json
_base_ = [
    '../_base_/models/occworld_world_model.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/schedules/adamw_cosine_200e.py',
    '../_base_/default_runtime.py',
]
history_frames = 3
future_frames = 3
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    tokenizer=dict(
        num_classes=12, height=8, ch=16, ch_mult=(1, 2), num_res_blocks=1,
        attn_resolutions=(16, ), resolution=32, z_channels=16,
        quantizer=dict(num_codes=64, code_dim=16, restart_dead=True, dead_window=20)),
    tokenizer_ckpt='work_dirs/occworld_vqvae_tiny_synthetic-city',
    transformer=dict(
        token_shape=(16, 16, 16), channels=(16, 32, 64), num_frames=7, num_codes=64,
        temporal_layers=2, pose_layers=1, pose_dim=16, pose_out_dim=16, num_heads=2),
    pose_encoder=dict(out_channels=16),
    pose_decoder=dict(in_channels=16),
    history_frames=history_frames,
    future_frames=future_frames)
train_dataloader = dict(dataset=dict(num_frames=8, masks=()))
val_dataloader = dict(dataset=dict(num_frames=history_frames + future_frames, masks=()))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='OccupancyMetric', convention='occworld', vocabulary='dynamiccity_carlasc',
         per_frame=True, horizons=(1, 2, 3)),
    dict(type='PlanningMetric', frames_per_second=1.0, horizons=(1, 2, 3)),
]
test_evaluator = val_evaluator
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, T_max=10, eta_min=1e-5,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=5)
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=5))
