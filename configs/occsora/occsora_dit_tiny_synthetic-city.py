# Tiny OccSora DiT on the tiny synthetic city: trains on a CPU in well under a minute.
# 8 frames x 32 x 32 x 8 voxels -> the tiny 4D VQ tokenizer of occsora_vqvae_tiny_synthetic-city.py
# (same settings here; tokens 16 x 4 x 8 x 8 = 256 tokens, scaled by 1/10) -> DiT-tiny (depth 2,
# width 32, 2 heads) with the (x, y) trajectory of the 8 frames (16 MLP inputs); 100 diffusion
# steps, DDIM 10-step sampling with CFG 4.0. Point model.tokenizer_ckpt at a checkpoint of the
# tiny tokenizer for meaningful samples.
#   python tools/train.py configs/occsora/occsora_vqvae_tiny_synthetic-city.py
#   python tools/train.py configs/occsora/occsora_dit_tiny_synthetic-city.py \
#       --cfg-options model.tokenizer_ckpt=work_dirs/occsora_vqvae_tiny_synthetic-city
#   python tools/sample.py configs/occsora/occsora_dit_tiny_synthetic-city.py \
#       work_dirs/occsora_dit_tiny_synthetic-city --task trajectory --trajectory left
# Generation scoring of the 4 val windows (configs/_base_/generation_eval.py): one scene sampled
# per window with its trajectory, written to <work_dir>/samples/*.npz, FID / KID / P-R / IS / TC
# with the tiny 3D extractor (the CPU test tests/test_tools/test_stage2_generation_eval_cli.py):
#   python tools/train.py configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py
#   python tools/test.py configs/occsora/occsora_dit_tiny_synthetic-city.py DIT_CKPT \
#       --out gen.json --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT
_base_ = [
    '../_base_/models/occsora_dit.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
    '../_base_/generation_eval.py',
]
vis_palette = 'dynamiccity_carlasc'
num_frames = 8
latent_shape = (16, 4, 8, 8)
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    tokenizer=dict(
        num_classes=12, height=8, embed_dim=8, hidden=32, num_res_blocks=1, token_preset=None,
        downsample=(2, 4, 4), z_channels=16,
        quantizer=dict(num_codes=64, code_dim=16, restart_dead=True, dead_window=20)),
    latent_shape=latent_shape,
    latent_adapter=dict(stride=(2, 4, 4)),  # 8 x 32 x 32 voxels over 4 x 8 x 8 tokens
    denoiser=dict(latent_shape=latent_shape, arch='DiT-tiny', num_frames=num_frames),
    diffusion=dict(num_timesteps=100),
    sample_cfg=dict(sampler='ddim', num_steps=10),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
# The trajectory condition comes with every window (the dataset derives it from the poses).
test_cfg = dict(type='TestLoop')
test_dataloader = dict(dataset=dict(pipeline=[dict(type='PackOccInputs')]))
test_evaluator = dict(
    extractor='configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py',
    reference_cache='work_dirs/generation_eval/synthetic-city-tiny-val-8f_{version}.npz',
    is_splits=2)
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=8),
                     save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
# A short run: a faster EMA than the reference's 0.9999 so the EMA weights move.
custom_hooks = [dict(type='EMAHook', momentum=0.05, update_buffers=True, priority=49)]
