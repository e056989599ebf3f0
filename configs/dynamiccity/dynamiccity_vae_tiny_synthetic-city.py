# Tiny DynamicCity HexPlane VAE on the synthetic city: 8 frames x 32 x 32 x 8 voxels ->
# HexPlane C = 8: xy 16x16, xz / yz 16x4, tx / ty 4x16, tz 4x4. What `make demo` trains: a CPU
# run of a few minutes, not a converged model. The tokenizer settings match
# dynamiccity_dit_tiny_synthetic-city.py.
#   python tools/train.py configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py
_base_ = [
    '../_base_/models/dynamiccity_vae.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/schedules/adam_multistep_100e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    num_frames=8,
    spatial_size=(32, 32, 8),
    latent_channels=8,
    query_channels=16,
    hidden_channels=16,
    high_res_channels=8,
    transformer_mlp_dim=16,
    dropout=0.0,
    frame_chunk=None,  # tiny grids fit in memory: no activation checkpointing in the decoder
)
# 60 epochs x 8 iterations: about 4.5 minutes on 2 idle CPU cores (0.55 s/iter). Val mIoU
# (DynamicCity convention) was ~9 after 50 iterations, ~20 after 150, 24.1 after 320.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-2))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[45, 54], gamma=0.5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=60, val_interval=10)
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc', mask_key='valid_mask')
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=8),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1,
                    save_best='dynamiccity@valid_mask/mIoU', rule='greater'))
