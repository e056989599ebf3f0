# OccSora stage 2 (wzzheng/OccSora @ 9f8d1f0, the paper's trajectory condition): a DiT over the
# frozen 4D VQ tokenizer's quantized tokens, in the shared LatentDiffusion generator (no latent
# adapter). 32 x 200 x 200 x 16 clips -> tokens 128 x 4 x 25 x 25 (scaled by 1/10) -> two 3x3x3
# convs 128 -> 256 -> 256, 2500 tokens + 1D sin-cos positions -> 28 adaLN-Zero blocks (width 256,
# 16 heads) -> 256 = 2 x 128 channels (eps, learned sigma). Condition: the ego (x, y) of the 32
# frames (64 numbers, x 0.1) -> MLP 64 -> 128 -> 128 -> 256, added to the timestep embedding;
# dropped (zero null) with p = 0.1 for classifier-free guidance. 1000-step linear schedule,
# hybrid loss (MSE + VB); sampling: ancestral DDPM 1000 steps, CFG 4.0.
# Denoiser: 36,819,200 parameters (= the reference). The released code's command condition:
# denoiser=dict(condition='command') (36,811,520).
model = dict(
    type='LatentDiffusion',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18),
    tokenizer=dict(
        type='OccSoraVQVAE', num_classes=18, height=16, embed_dim=8, hidden=512,
        num_res_blocks=4, num_heads=2, token_preset='128x4x25x25', z_channels=128,
        quantizer=dict(type='VectorQuantizer', num_codes=512, code_dim=128, beta=1.0)),
    # Stage-1 checkpoint (loaded by init_weights before training); set it on the command
    # line: --cfg-options model.tokenizer_ckpt=work_dirs/<vqvae run>/best.pth
    tokenizer_ckpt=None,
    latent_shape=(128, 4, 25, 25),
    latent_scale=0.1,
    # Parameter-free voxel <-> token-cell map for inpainting / outpainting / continuation /
    # single frame (tools/sample.py): each token covers 8 frames x 8 x 8 voxels (all of Z);
    # latent_shape comes from the model and Z from the tokenizer's height, so the 32-frame
    # windows of every dataset (200 x 200 x 16, CarlaSC 128 x 128 x 8) share this entry. One
    # halo cell: the 3D convolutions mix neighbouring tokens.
    latent_adapter=dict(type='GridLatentAdapter', stride=(8, 8, 8), halo=1),
    denoiser=dict(
        type='OccSoraDiT', latent_shape=(128, 4, 25, 25), arch='DiT-OccSora', mlp_ratio=4.0,
        learn_sigma=True, condition='trajectory', num_frames=32, cond_hidden=128,
        trajectory_scale=0.1, learned_null=False),
    diffusion=dict(
        type='GaussianDiffusion', num_timesteps=1000, beta_schedule='linear',
        beta_start=1e-4, beta_end=0.02, prediction_type='eps', learn_sigma=True,
        loss_type='hybrid'),
    cond_drop_prob=0.1,
    sample_cfg=dict(sampler='ddpm', num_steps=None, guidance_scale=4.0, eta=0.0),
)
