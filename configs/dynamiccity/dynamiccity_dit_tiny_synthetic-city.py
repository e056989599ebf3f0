# Tiny DynamicCity DiT on the synthetic city: trains on CPU in a minute or two (48 iterations of
# about 0.8 s on one idle core: two tiny-VAE encodes (window + previous window) per batch).
# 8 frames x 32 x 32 x 8 voxels -> tiny HexPlane VAE (C = 8; planes (4, 16, 16, 4)) -> 24 x 24
# rollout -> DiT-tiny (depth 2, width 32). Point model.tokenizer_ckpt at a checkpoint of
# dynamiccity_vae_tiny_synthetic-city.py (same tokenizer settings) for meaningful samples.
#   python tools/train.py configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py \
#       --cfg-options model.tokenizer_ckpt=work_dirs/dynamiccity_vae_tiny_synthetic-city
#   python tools/sample.py configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py \
#       work_dirs/dynamiccity_dit_tiny_synthetic-city --task command --command LEFT
# Generation scoring of the 4 val windows (samples -> <work_dir>/samples/*.npz, FID / KID / P-R /
# IS / TC with the tiny 3D extractor; the CPU test tests/test_tools/test_generation_eval_cli.py):
#   python tools/train.py configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py
#   python tools/test.py configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py DIT_CKPT \
#       --out gen.json --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT
_base_ = [
    '../_base_/models/dynamiccity_dit.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
    '../_base_/generation_eval.py',
]
vis_palette = 'dynamiccity_carlasc'
num_frames = 8
grid = (32, 32, 8)
hex_shape = (4, 16, 16, 4)
model = dict(
    tokenizer=dict(
        type='HexPlaneVAE', num_classes=12, num_frames=num_frames, spatial_size=grid,
        latent_channels=8, query_channels=16, hidden_channels=16, high_res_channels=8,
        transformer_mlp_dim=16, dropout=0.0),
    latent_adapter=dict(hex_shape=hex_shape, voxel_shape=(num_frames, ) + grid),
    denoiser=dict(hex_shape=hex_shape, in_channels=8, arch='DiT-tiny', num_frames=num_frames),
    diffusion=dict(num_timesteps=100),
    sample_cfg=dict(sampler='ddim', num_steps=10),
    context_stride=4,
)
# 8 + 4 frames per item: frames 0..7 condition frames 4..11 (the previous-HexPlane condition).
train_dataloader = dict(
    dataset=dict(num_scenes=8, num_frames=12,
                 pipeline=[dict(type='MakeLayout', classes=('vehicle', ), pool=4),
                           dict(type='PackOccInputs')]))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    dataset=dict(pipeline=[dict(type='MakeLayout', classes=('vehicle', ), pool=4),
                           dict(type='PackOccInputs')]))
test_evaluator = dict(
    extractor='configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py',
    reference_cache='work_dirs/generation_eval/synthetic-city-tiny-val-8f_{version}.npz',
    is_splits=2)
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=12),
                     save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
# A short run: a faster EMA than the reference's 0.9999 so the EMA weights move.
custom_hooks = [dict(type='EMAHook', momentum=0.05, update_buffers=True, priority=49)]
