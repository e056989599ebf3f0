# DynamicCity stage 2 (CarlaSC defaults): a DiT over the padded rollout of a frozen HexPlane VAE.
# Voxels 16 x 128 x 128 x 8 (12 classes) -> HexPlane (T', X', Y', Z') = (8, 64, 64, 4), C = 16
# -> 76 x 76 rollout canvas -> DiT-DC/2 (depth 16, width 384, 8 heads, patch 2; 1416 of 1444
# tokens kept) with learned sigma, 1000-step linear schedule, hybrid loss, CFG 4.0 sampling.
# Parameter count of the denoiser: 43,730,432 without condition embedders (the reference's
# default); with the four conditions below 44,097,920 (+0.84 %), see RolloutDiT's docstring.
model = dict(
    type='LatentDiffusion',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    tokenizer=dict(
        type='HexPlaneVAE', num_classes=12, num_frames=16, spatial_size=(128, 128, 8),
        latent_channels=16),
    # Stage-1 checkpoint (loaded by init_weights before training); set it on the command
    # line: --cfg-options model.tokenizer_ckpt=work_dirs/<vae run>/best.pth
    tokenizer_ckpt=None,
    latent_adapter=dict(type='PaddedRollout', hex_shape=(8, 64, 64, 4),
                        voxel_shape=(16, 128, 128, 8)),
    latent_scale=1.0,
    denoiser=dict(
        type='RolloutDiT', hex_shape=(8, 64, 64, 4), in_channels=16, arch='DiT-DC/2',
        patch_size=2, mlp_ratio=4.0, learn_sigma=True, num_frames=16,
        conditions=('trajectory', 'command', 'layout', 'hexplane')),
    diffusion=dict(
        type='GaussianDiffusion', num_timesteps=1000, beta_schedule='linear',
        beta_start=1e-4, beta_end=0.02, prediction_type='eps', learn_sigma=True,
        loss_type='hybrid'),
    cond_drop_prob=0.1,
    # Windows of 16 + 12 frames train the previous-HexPlane condition (frames 0..15 condition
    # frames 12..27); 16-frame windows are used as they are (condition then null).
    context_stride=12,
    sample_cfg=dict(sampler='ddpm', num_steps=None, guidance_scale=4.0, eta=0.0),
)
