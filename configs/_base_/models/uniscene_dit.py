# UniScene stage 1b (Arlo0o/UniScene OccDiT): layout-conditioned latent diffusion over the frozen
# occupancy KL-VAE (configs/_base_/models/uniscene_vae.py, same tokenizer settings).
# Clip: 5 frames of 200 x 200 x 16 voxels -> latent (C, T, H, W) = (4, 5, 50, 50), the posterior
# MEAN of the VAE (``encode``; ``encode_kwargs=dict(sample=True)`` draws from the posterior),
# x 70 (latent_scale; the reference's scale_factor). OccDiT: patch 2 (625 tokens a frame), width
# 512, depth 12, 16 heads, alternating spatial / temporal blocks, 2D + 1D sin-cos positions, the
# BEV layout (T, 50, 50) concatenated to the noisy latent as a 5th channel, learned sigma.
# 57,984,544 parameters (57,661,984 trainable); the reference's 58,183,200 (57,860,640) include
# its ground-truth meta embedder (denoiser conditions=('layout', 'meta'), meta_dim=4), which
# only reference_gt_prior=True may use. Diffusion: DiT's 1000-step linear schedule, hybrid loss;
# sampling DDIM 50 (the reference's evaluation) with CFG 4.0 against the null (-1) layout.
# reference_gt_prior=True reproduces the reference's table: start from noise + 0.05 x the
# encoded ground-truth first frame (and the meta statistics with a meta denoiser). Off: the
# generator never reads ground-truth occupancy when sampling.
model = dict(
    type='UniSceneLatentDiffusion',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18),
    tokenizer=dict(
        type='UniSceneOccVAE', num_classes=18, height=16, embed_dim=8, ch=64, ch_mult=(1, 2, 4),
        num_res_blocks=2, attn_resolutions=(50, ), resolution=200, latent_channels=4,
        dec_hidden=64, dec_ch_mult=(4, 2, 1), dec_res_blocks=2),
    # Stage-1 checkpoint (loaded by init_weights before training); set it on the command
    # line: --cfg-options model.tokenizer_ckpt=work_dirs/<vae run>/best.pth
    tokenizer_ckpt=None,
    latent_scale=70.0,
    latent_shape=(4, 5, 50, 50),
    # Parameter-free voxel <-> latent-cell map for inpainting / outpainting / continuation /
    # single frame (tools/sample.py): a cell covers 1 frame x 4 x 4 voxels (all of Z); shapes
    # from latent_shape and the tokenizer's height. Halo: none in time (the encoder is 2D per
    # frame), one cell in space.
    latent_adapter=dict(type='GridLatentAdapter', stride=(1, 4, 4), halo=(0, 1, 1)),
    denoiser=dict(
        type='UniSceneOccDiT', input_size=50, in_channels=4, num_frames=5, arch='UniScene',
        patch_size=2, mlp_ratio=4.0, learn_sigma=True, conditions=('layout', ),
        layout_classes=12, null_layout_value=-1.0),
    diffusion=dict(
        type='GaussianDiffusion', num_timesteps=1000, beta_schedule='linear',
        beta_start=1e-4, beta_end=0.02, prediction_type='eps', learn_sigma=True,
        loss_type='hybrid'),
    cond_drop_prob=0.1,
    sample_cfg=dict(sampler='ddim', num_steps=50, guidance_scale=4.0, eta=0.0),
    reference_gt_prior=False,
    noise_prior_weight=0.05,
    prior_frame=0,
)
