# OccSora token-size ablation: the nuScenes tokenizer with token grid 128 x 8 x 25 x 25
# (5,000 tokens per 32-frame clip, 256x compression of the T x X x Y cells; the default
# 128 x 4 x 25 x 25: 2,500 tokens, 512x). Only the stride schedule changes (TOKEN_PRESETS in
# occworld4d/models/tokenizers/vqvae_4d.py): 137,369,744 parameters (the same count as the default).
# A DiT on these tokens needs model.latent_shape = model.denoiser.latent_shape = (128, 8, 25, 25).
#   bash tools/dist_train.sh configs/occsora/occsora_vqvae-128x8x25x25_8xb1-150e_occ3d-nuscenes.py 8
_base_ = ['./occsora_vqvae_8xb1-150e_occ3d-nuscenes.py']
model = dict(token_preset='128x8x25x25')
