# OccWorld world model (wzzheng/OccWorld @ 1ee7f77) on Occ3D-nuScenes, stage 2.
# Frozen tokenizer: the per-frame VQ-VAE of occworld_vqvae.py (point tokenizer_ckpt at its
# checkpoint). World model: U-Net over 128 x 50 x 50 code maps, channels (128, 256, 512) at
# 50 / 25 / 12, 6 causal temporal-attention layers and 2 pose layers at the 50 and 25 levels,
# 8 heads, FFN 4x, 512-way next-frame code logits, context of 15 frames; pose encoder
# (relative xy + 3-way command -> 128) and 3-mode trajectory decoder. Loss: CE on codes +
# 0.1 x L2 of the command's mode. Parameters: transformer 58,182,740 + pose encoder 17,280 +
# pose decoder 17,286 = 58,217,306 (tokenizer excluded, 14,168,272, frozen).
# Forecast: 5 history frames -> 6 future frames with a KV cache (use_cache=False recomputes
# the history every step; same output).
model = dict(
    type='OccWorld',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18),
    tokenizer=dict(
        type='OccWorldVQVAE',
        num_classes=18,
        height=16,
        embed_dim=8,
        ch=64,
        ch_mult=(1, 2, 4),
        num_res_blocks=2,
        attn_resolutions=(50, ),
        resolution=200,
        z_channels=128,
        dropout=0.0,
        quantizer=dict(type='VectorQuantizer', num_codes=512, code_dim=128, beta=1.0)),
    tokenizer_ckpt='work_dirs/occworld_vqvae_8xb1-200e_occ3d-nuscenes',
    transformer=dict(
        type='OccWorldTransformer',
        token_shape=(128, 50, 50),
        channels=(128, 256, 512),
        num_frames=15,
        num_codes=512,
        temporal_layers=6,
        pose_layers=2,
        pose_dim=128,
        pose_out_dim=128,
        num_heads=8),
    pose_encoder=dict(type='PoseEncoder', in_channels=5, out_channels=128, num_layers=2),
    pose_decoder=dict(type='PoseDecoder', in_channels=128, num_modes=3, num_layers=2),
    history_frames=5,
    future_frames=6,
    pose_loss_weight=0.1,
    use_cache=True)
