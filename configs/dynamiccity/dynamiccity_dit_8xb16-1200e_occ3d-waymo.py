# DynamicCity DiT on Occ3D-Waymo: 16 x 200 x 200 x 16 windows (0.4 m), 10 classes (free + the
# 9-class merge), HexPlane (8, 100, 100, 8) with C = 16 -> 116 x 116 rollout, DiT-DC/2.
_base_ = [
    '../_base_/models/dynamiccity_dit.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
]
hex_shape = (8, 100, 100, 8)
model = dict(
    data_preprocessor=dict(num_classes=10),
    tokenizer=dict(num_classes=10, spatial_size=(200, 200, 16)),
    latent_adapter=dict(hex_shape=hex_shape, voxel_shape=(16, 200, 200, 16)),
    denoiser=dict(hex_shape=hex_shape),
)
vis_palette = 'dynamiccity_waymo'
free_label = 0
# Windows of 16 + 12 frames: the first 16 are the previous window (the HexPlane condition),
# frames 12..27 the window to generate (model.context_stride = 12 = the stride of
# long-sequence sampling with overlap 4).
pipeline = [dict(type='MakeLayout', classes=('vehicle', ), pool=4), dict(type='PackOccInputs')]
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='Occ3DWaymoDataset', data_root='data/occ3d_waymo', split='training',
                 num_frames=28, resolution='0.4m', class_merge='occ3d_waymo_to_dynamiccity',
                 pipeline=pipeline))
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
