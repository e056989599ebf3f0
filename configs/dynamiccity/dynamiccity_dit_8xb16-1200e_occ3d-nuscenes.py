# DynamicCity DiT on Occ3D-nuScenes: 16 x 200 x 200 x 16 windows, 12 slots (free + DynamicCity's
# 11-class merge), HexPlane (8, 100, 100, 8) with C = 16 -> 116 x 116 rollout, DiT-DC/2.
_base_ = [
    '../_base_/models/dynamiccity_dit.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
]
hex_shape = (8, 100, 100, 8)
model = dict(
    tokenizer=dict(num_classes=12, spatial_size=(200, 200, 16)),
    latent_adapter=dict(hex_shape=hex_shape, voxel_shape=(16, 200, 200, 16)),
    denoiser=dict(hex_shape=hex_shape),
)
vis_palette = 'dynamiccity_nuscenes'
free_label = 0
# Windows of 16 + 12 frames: the first 16 are the previous window (the HexPlane condition),
# frames 12..27 the window to generate (model.context_stride = 12 = the stride of
# long-sequence sampling with overlap 4).
pipeline = [dict(type='MakeLayout', classes=('vehicle', ), pool=4), dict(type='PackOccInputs')]
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='Occ3DNuScenesDataset', data_root='data/occ3d_nuscenes',
                 ann_file='data/occ3d_nuscenes/nuscenes_infos_train_temporal_v3_scene.pkl',
                 num_frames=28, class_merge='occ3d_nuscenes_to_dynamiccity', pipeline=pipeline))
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
