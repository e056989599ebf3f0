# DynamicCity HexPlane VAE on Occ3D-Waymo (16 x 200 x 200 x 16, 9 classes + free = 10 slots):
# HexPlane xy 100x100, xz / yz 100x8, tx / ty 8x100, tz 8x8 (compression 48.25).
# The reference releases no Waymo class counts: CE is unweighted here. Count the training
# split (merged classes) and paste the printed list into model.class_frequencies below:
#   python tools/analysis_tools/class_frequency.py \
#       configs/dynamiccity/dynamiccity_vae_8xb1-100e_occ3d-waymo.py --out waymo_freq.json \
#       --cfg-options train_dataloader.dataset.window_stride=16
_base_ = [
    '../_base_/models/dynamiccity_vae.py',
    '../_base_/datasets/occ3d_waymo.py',
    '../_base_/schedules/adam_multistep_100e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=10),
    num_classes=10,
    spatial_size=(200, 200, 16),
    class_frequencies=None,
)
optim_wrapper = dict(type='AmpOptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_waymo', mask_key='mask_camera')
test_evaluator = val_evaluator
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='dynamiccity@mask_camera/mIoU', rule='greater'))
auto_scale_lr = dict(base_batch_size=8, enable=False)
