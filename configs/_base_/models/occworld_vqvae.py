# OccWorld scene tokenizer (wzzheng/OccWorld @ 1ee7f77): per-frame 2D VQ-VAE on Occ3D-nuScenes.
# Class embedding 18 -> 8, Z folded (16 x 8 = 128 channels); encoder ch 64, mult (1, 2, 4),
# 2 ResNet blocks a level, attention at 50 x 50 and in the middle, z 128; codebook 512 x 128,
# beta 1.0; 50 x 50 tokens a 200 x 200 frame. Loss CE x 10 + Lovasz + VQ. 14,168,272 parameters.
# CPU memory: one forward + loss + backward on 4 x 200 x 200 x 16 frames peaks at about 4.4 GB
# RSS; checkpoint_levels=1 (recompute the 200 x 200 ResNet blocks) 3.5 GB, =2 3.1 GB, for
# +2 % / +5 % CPU time (tools/analysis_tools/benchmark_tokenizer.py occworld --frames 4).
model = dict(
    type='OccWorldVQVAE',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18),
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
    quantizer=dict(type='VectorQuantizer', num_codes=512, code_dim=128, beta=1.0),
    ce_weight=10.0,
    lovasz_weight=1.0,
    vq_weight=1.0,
    checkpoint_levels=0)
