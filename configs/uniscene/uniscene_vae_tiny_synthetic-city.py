# Tiny UniScene occupancy VAE on the tiny synthetic city (8 frames x 32 x 32 x 8, 12 classes,
# free 0): encoder width 16, one downsampling (latent 4 x 16 x 16 a frame), decoder width 8.
# Trains on a CPU in about a minute.
#   python tools/train.py configs/uniscene/uniscene_vae_tiny_synthetic-city.py
_base_ = [
    '../_base_/models/uniscene_vae.py',
    '../_base_/recipes/tokenizer_tiny_synthetic-city.py',
]
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12, height=8, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16, ),
    resolution=32, dec_hidden=8, dec_ch_mult=(2, 1), dec_res_blocks=1, kl_weight=1e-3)
