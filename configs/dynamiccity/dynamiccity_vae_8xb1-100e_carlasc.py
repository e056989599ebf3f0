# DynamicCity HexPlane VAE on CarlaSC (16 x 128 x 128 x 8, 12 slots), the reference recipe:
# batch 1 x 8 GPUs, Adam lr 1e-3, MultiStep [50, 60, 70, 80, 90] x 0.7, 100 epochs, AMP,
# best checkpoint by validation mIoU (DynamicCity convention, voxels with points only).
#   bash tools/dist_train.sh configs/dynamiccity/dynamiccity_vae_8xb1-100e_carlasc.py 8
_base_ = [
    '../_base_/models/dynamiccity_vae.py',
    '../_base_/datasets/carlasc.py',
    '../_base_/schedules/adam_multistep_100e.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(type='AmpOptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc', mask_key='valid_mask')
test_evaluator = val_evaluator
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='dynamiccity@valid_mask/mIoU', rule='greater'))
auto_scale_lr = dict(base_batch_size=8, enable=False)
