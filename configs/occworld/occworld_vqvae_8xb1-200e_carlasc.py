# OccWorld's per-frame VQ-VAE on CarlaSC (128 x 128 x 8 voxels, DynamicCity's 12 slots, free 0):
# the reference architecture with Z = 8 folded (8 x 8 = 64 channels) and attention at the
# 32 x 32 level (X / 4), 512 x 128 codebook, 32 x 32 tokens a frame. Reconstruction is scored in
# the DynamicCity convention with CarlaSC's valid mask (voxels with points).
#   bash tools/dist_train.sh configs/occworld/occworld_vqvae_8xb1-200e_carlasc.py 8
_base_ = [
    '../_base_/models/occworld_vqvae.py',
    '../_base_/datasets/carlasc.py',
    '../_base_/schedules/adamw_cosine_200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12, height=8, attn_resolutions=(32, ), resolution=128)
train_dataloader = dict(dataset=dict(num_frames=10))
val_dataloader = dict(dataset=dict(num_frames=10, window_stride=10))
test_dataloader = val_dataloader
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc', mask_key='valid_mask')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     save_best='dynamiccity@valid_mask/mIoU', rule='greater'))
