# OccSora stage 1: the 4D VQ-VAE on 32-frame Occ3D-nuScenes clips, batch 1 per GPU on 8 GPUs
# (paper: 8 x A100, 150 epochs, 50.6 h, 42 GB a GPU), AdamW lr 1e-3, wd 0.01, 200 warm-up
# iterations then cosine, gradient clipping at 35. Scored with the OccWorld convention.
#   bash tools/dist_train.sh configs/occsora/occsora_vqvae_8xb1-150e_occ3d-nuscenes.py 8
_base_ = ['../_base_/datasets/occ3d_nuscenes.py', '../_base_/recipes/occsora_vqvae_8xb1-150e.py']
num_frames = 32
train_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames))
val_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames, window_stride=num_frames,
                                                 masks=()))
test_dataloader = val_dataloader
val_evaluator = dict(type='OccupancyMetric', convention='occworld', vocabulary='occ3d_nuscenes')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='occworld/mIoU'))
