# DynamicCity DiT on Occ3D-Waymo: 16 x 200 x 200 x 16 windows (0.4 m), 10 slots (free + the
# 9-class merge), the frozen VAE of dynamiccity_vae_8xb1-100e_occ3d-waymo.py (HexPlane
# (8, 100, 100, 8), C = 16) -> 116 x 116 rollout (3316 of 3364 tokens), DiT-DC/2.
# Windows of 16 + 12 frames train the previous-HexPlane condition (see the CarlaSC config).
# Generation scoring on the validation split (16-frame windows) with the extractor of
# configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-waymo.py:
#   python tools/test.py CONFIG DIT_CKPT --out gen.json \
#       --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT
_base_ = [
    '../_base_/models/dynamiccity_dit.py',
    '../_base_/datasets/occ3d_waymo.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
    '../_base_/generation_eval.py',
]
hex_shape = (8, 100, 100, 8)
model = dict(
    data_preprocessor=dict(num_classes=10),
    tokenizer=dict(num_classes=10, spatial_size=(200, 200, 16)),
    latent_adapter=dict(hex_shape=hex_shape, voxel_shape=(16, 200, 200, 16)),
    denoiser=dict(hex_shape=hex_shape),
)
vis_palette = 'dynamiccity_waymo'
train_dataloader = dict(
    batch_size=16, num_workers=8,
    dataset=dict(num_frames=28,
                 pipeline=[dict(type='MakeLayout', classes=('vehicle', ), pool=4),
                           dict(type='PackOccInputs')]))
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=4,
    dataset=dict(masks=(), pipeline=[dict(type='MakeLayout', classes=('vehicle', ), pool=4),
                                     dict(type='PackOccInputs')]))
test_evaluator = dict(
    extractor='configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-waymo.py',
    reference_cache='work_dirs/generation_eval/occ3d-waymo-val-16f_{version}.npz')
default_hooks = dict(save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
