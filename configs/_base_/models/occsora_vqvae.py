# OccSora 4D tokenizer (wzzheng/OccSora @ 9f8d1f0): VideoGPT-style VQ-VAE over 32-frame clips.
# Class embedding 18 -> 8, Z folded (128 channels) -> B x 128 x T x H x W; encoder: three k4 s2
# 3D convs 128 -> 512, 3x3x3 conv, 4 attention-residual blocks (axial t, h, w attention, 2 heads),
# BN, ReLU, 1x1x1 conv 512 -> 128; codebook 512 x 128 (beta 1.0); mirrored decoder.
# 32 x 200 x 200 x 16 -> 128 x 4 x 25 x 25 tokens. Loss CE x 10 + Lovasz + VQ.
# 137,369,744 parameters. Other token sizes: token_preset='128x8x50x50' etc. (TOKEN_PRESETS).
model = dict(
    type='OccSoraVQVAE',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18),
    num_classes=18,
    height=16,
    embed_dim=8,
    hidden=512,
    num_res_blocks=4,
    num_heads=2,
    token_preset='128x4x25x25',
    z_channels=128,
    quantizer=dict(type='VectorQuantizer', num_codes=512, code_dim=128, beta=1.0),
    ce_weight=10.0,
    lovasz_weight=1.0,
    vq_weight=1.0)
