# Tiny OccWorld VQ-VAE on the tiny synthetic city (8 frames x 32 x 32 x 8, 12 classes, free 0):
# same architecture family at width 16, one downsampling (16 x 16 tokens a frame), 64 codes.
# Trains on a CPU in about a minute.
#   python tools/train.py configs/occworld/occworld_vqvae_tiny_synthetic-city.py
_base_ = [
    '../_base_/models/occworld_vqvae.py',
    '../_base_/recipes/tokenizer_tiny_synthetic-city.py',
]
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12, height=8, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16, ),
    resolution=32, z_channels=16,
    quantizer=dict(num_codes=64, code_dim=16, restart_dead=True, dead_window=20))
