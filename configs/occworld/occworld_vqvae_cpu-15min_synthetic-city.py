# OccWorld VQ-VAE, CPU learning recipe (issue 13): the per-frame 2D VQ-VAE of occworld_vqvae.py
# (class embedding, Z folded into channels, ResNet encoder / decoder with attention, codebook,
# CE x 10 + Lovasz + VQ loss) at CPU size on the synthetic city, 32 x 32 x 8 voxels over
# CarlaSC's range (1.6 m voxels) at OccWorld's 2 Hz: width 32, one downsampling (16 x 16 tokens
# a frame), z / code width 32, 256 codes with dead-code restarts. 674,656 parameters.
# Train: batch 8 single frames of 8 generated scenes (seed 0, 16,384 scenes; about 16 k frames
# seen), AdamW lr 2e-3, 50 warm-up iterations then cosine, 2,000 iterations.
# Val: 32 windows x 11 frames of other seeds (seed 1), DynamicCity convention on valid_mask.
# Budget: 15 min on 2 idle cores. Measured: val dynamiccity@valid_mask/mIoU 87.76 % (target
# >= 85; binary IoU 97.72 %); about 0.32 s of CPU an iteration on 1 thread (about 11 CPU-min
# for the 2,000; 40 min wall on the shared 2-core box at load ~6, where it got ~30 % of a core).
#   python tools/train.py configs/occworld/occworld_vqvae_cpu-15min_synthetic-city.py \
#       --work-dir work_dirs/occworld_vqvae_cpu-15min_synthetic-city
#   python tools/test.py configs/occworld/occworld_vqvae_cpu-15min_synthetic-city.py \
#       work_dirs/occworld_vqvae_cpu-15min_synthetic-city --out vqvae.json
_base_ = [
    '../_base_/models/occworld_vqvae.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12, height=8, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16, ),
    resolution=32, z_channels=32,
    quantizer=dict(num_codes=256, code_dim=32, restart_dead=True, dead_window=20))
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(num_scenes=16384, num_frames=1, frame_rate=2.0, seed=0, masks=()))
val_dataloader = dict(
    batch_size=4,
    dataset=dict(num_scenes=32, num_frames=11, frame_rate=2.0, seed=1,
                 masks=('valid_mask', )))
test_dataloader = val_dataloader
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc', mask_key='valid_mask')
test_evaluator = val_evaluator
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=2000, T_max=2000,
         eta_min=1e-5),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
