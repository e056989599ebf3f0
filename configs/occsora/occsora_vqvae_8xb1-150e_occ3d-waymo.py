# OccSora 4D VQ tokenizer on Occ3D-Waymo at 0.4 m (DynamicCity's 9 classes + free 0 = 10 slots):
# 32-frame windows of 200 x 200 x 16 voxels (3.2 s at 10 Hz). Z = 16 as on nuScenes, so the class
# embedding stays 8 wide (Z x E = 128); tokens 128 x 4 x 25 x 25. Recipe as on nuScenes;
# scored with the DynamicCity convention inside the camera mask.
#   bash tools/dist_train.sh configs/occsora/occsora_vqvae_8xb1-150e_occ3d-waymo.py 8
_base_ = ['../_base_/datasets/occ3d_waymo.py', '../_base_/recipes/occsora_vqvae_8xb1-150e.py']
num_frames = 32
vis_palette = 'dynamiccity_waymo'
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=10),
    num_classes=10, height=16, embed_dim=8)
train_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames))
val_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames, window_stride=num_frames))
test_dataloader = val_dataloader
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_waymo', mask_key='mask_camera')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='dynamiccity@mask_camera/mIoU'))
