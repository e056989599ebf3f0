# OccWorld stage 1: the per-frame VQ-VAE on Occ3D-nuScenes, 10-frame windows (the reference's
# return_len), batch 1 per GPU on 8 GPUs, AdamW lr 1e-3, wd 0.01, 200 warm-up iterations then
# cosine over 200 epochs, gradient clipping at 35. Reconstruction is scored with the OccWorld
# convention (classes 0..16, absent classes = 1, no visibility mask).
#   bash tools/dist_train.sh configs/occworld/occworld_vqvae_8xb1-200e_occ3d-nuscenes.py 8
_base_ = [
    '../_base_/models/occworld_vqvae.py',
    '../_base_/recipes/tokenizer_8xb1-200e_occ3d-nuscenes.py',
]
