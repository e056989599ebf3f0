# Tiny DynamicCity HexPlane VAE on the synthetic city: 8 frames x 32 x 32 x 8 voxels ->
# HexPlane C = 8: xy 16x16, xz / yz 16x4, tx / ty 4x16, tz 4x4. A CPU smoke run, not a
# converged model: 5 epochs x 8 iterations took 235 s on the busy 2-core dev box (validation
# mIoU 6.5 %). The tokenizer settings match dynamiccity_dit_tiny_synthetic-city.py.
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
)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=3e-3))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[3, 4], gamma=0.7)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5, val_interval=5)
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc', mask_key='valid_mask')
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=2),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1,
                    save_best='dynamiccity@valid_mask/mIoU', rule='greater'))
