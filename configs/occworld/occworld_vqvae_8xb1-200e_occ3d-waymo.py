# OccWorld's per-frame VQ-VAE on Occ3D-Waymo (200 x 200 x 16 voxels at 0.4 m, DynamicCity's
# 9 classes + free 0): the reference architecture with 10 classes, 50 x 50 tokens a frame.
# Reconstruction is scored in the OccWorld convention (no mask).
#   bash tools/dist_train.sh configs/occworld/occworld_vqvae_8xb1-200e_occ3d-waymo.py 8
_base_ = [
    '../_base_/models/occworld_vqvae.py',
    '../_base_/datasets/occ3d_waymo.py',
    '../_base_/schedules/adamw_cosine_200e.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor=dict(type='OccDataPreprocessor', num_classes=10), num_classes=10)
train_dataloader = dict(dataset=dict(num_frames=10))
val_dataloader = dict(dataset=dict(num_frames=10, window_stride=10, masks=()))
test_dataloader = val_dataloader
val_evaluator = dict(type='OccupancyMetric', convention='occworld', vocabulary='dynamiccity_waymo')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     save_best='occworld/mIoU', rule='greater'))
