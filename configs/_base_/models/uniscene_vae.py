# UniScene occupancy VAE (Arlo0o/UniScene): continuous KL latent of 4 x 50 x 50 a frame.
# Class embedding 18 -> 8, Z folded (128 channels); per-frame 2D encoder ch 64, mult (1, 2, 4),
# 2 ResNet blocks a level (ReLU style), axial H / W attention (2 heads) at 50 x 50 and in the
# middle; temporal decoder: 1x1x1 conv 4 -> 256, attention-residual blocks with axial t / h / w
# attention, (1, 3, 3) transposed convs 50 -> 100 -> 200, 128 channels, class-table logits.
# Loss CE x 10 + Lovasz + KL. 11,290,264 parameters. kl_quirk=True reproduces the reference's
# KL (standard deviation where the log-variance belongs).
model = dict(
    type='UniSceneOccVAE',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18),
    num_classes=18,
    height=16,
    embed_dim=8,
    ch=64,
    ch_mult=(1, 2, 4),
    num_res_blocks=2,
    attn_resolutions=(50, ),
    resolution=200,
    latent_channels=4,
    dec_hidden=64,
    dec_ch_mult=(4, 2, 1),
    dec_res_blocks=2,
    ce_weight=10.0,
    lovasz_weight=1.0,
    kl_weight=1.0,
    kl_quirk=False)
