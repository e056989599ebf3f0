# UniScene stage 1a: the occupancy KL-VAE on Occ3D-nuScenes, 5-frame windows (OccDiT's clip
# length), batch 1 per GPU on 8 GPUs, AdamW lr 1e-3, wd 0.01, 200 warm-up iterations then
# cosine, gradient clipping at 35 (the house tokenizer recipe). Scored with the OccWorld
# convention.
#   bash tools/dist_train.sh configs/uniscene/uniscene_vae_8xb1-200e_occ3d-nuscenes.py 8
_base_ = [
    '../_base_/models/uniscene_vae.py',
    '../_base_/recipes/tokenizer_8xb1-200e_occ3d-nuscenes.py',
]
num_frames = 5
train_dataloader = dict(dataset=dict(num_frames=num_frames))
val_dataloader = dict(dataset=dict(num_frames=num_frames, window_stride=num_frames))
test_dataloader = val_dataloader
