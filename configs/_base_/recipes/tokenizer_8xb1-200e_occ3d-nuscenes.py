# The per-frame tokenizer recipe on Occ3D-nuScenes shared by OccWorld's VQ-VAE and UniScene's
# KL-VAE (the child adds its model base and sets the window length): batch 1 per GPU on 8 GPUs,
# AdamW lr 1e-3, wd 0.01, 200 warm-up iterations then cosine over 200 epochs, gradient clipping
# at 35; reconstruction scored on non-overlapping windows in the OccWorld convention (classes
# 0..16, absent classes = 1, no visibility mask), best checkpoint by that mIoU. A child that
# changes the window length sets it in train / val and re-assigns test_dataloader.
_base_ = [
    '../datasets/occ3d_nuscenes.py',
    '../schedules/adamw_cosine_200e.py',
    '../default_runtime.py',
]
num_frames = 10
train_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames))
val_dataloader = dict(batch_size=1, dataset=dict(num_frames=num_frames, window_stride=num_frames,
                                                 masks=()))
test_dataloader = val_dataloader
val_evaluator = dict(type='OccupancyMetric', convention='occworld', vocabulary='occ3d_nuscenes')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     save_best='occworld/mIoU', rule='greater'))
