# OccSora token-size ablation: the nuScenes tokenizer with token grid 128 x 16 x 50 x 50
# (40,000 tokens per 32-frame clip, 32x compression of the T x X x Y cells; the default
# 128 x 4 x 25 x 25: 2,500 tokens, 512x). Only the stride schedule changes (TOKEN_PRESETS in
# occworld4d/models/tokenizers/vqvae_4d.py):
# 103,814,288 parameters (2 down-sampling convs instead of 3).
# A DiT on these tokens needs model.latent_shape = model.denoiser.latent_shape = (128, 16, 50, 50).
#   bash tools/dist_train.sh \
#       configs/occsora/occsora_vqvae-128x16x50x50_8xb1-150e_occ3d-nuscenes.py 8
_base_ = ['./occsora_vqvae_8xb1-150e_occ3d-nuscenes.py']
model = dict(token_preset='128x16x50x50')
