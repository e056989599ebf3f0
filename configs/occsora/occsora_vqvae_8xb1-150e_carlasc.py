# OccSora 4D VQ tokenizer on CarlaSC (DynamicCity's 12 slots, free 0): 32-frame windows of
# 128 x 128 x 8 voxels (3.2 s at 10 Hz). Z = 8, so the class embedding is 16 wide to keep the
# folded width Z x E = 128 of the reference (nuScenes: 16 x 8); tokens 128 x 4 x 16 x 16
# (1024 tokens, 512x compression). Recipe as on nuScenes (AdamW 1e-3, cosine, 150 epochs);
# scored with the DynamicCity convention on voxels with points (valid_mask).
#   bash tools/dist_train.sh configs/occsora/occsora_vqvae_8xb1-150e_carlasc.py 8
_base_ = ['../_base_/datasets/carlasc.py', '../_base_/recipes/occsora_vqvae_8xb1-150e.py']
num_frames = 32
vis_palette = 'dynamiccity_carlasc'
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12, height=8, embed_dim=16)
train_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames))
val_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames, window_stride=num_frames))
test_dataloader = val_dataloader
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc', mask_key='valid_mask')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='dynamiccity@valid_mask/mIoU'))
