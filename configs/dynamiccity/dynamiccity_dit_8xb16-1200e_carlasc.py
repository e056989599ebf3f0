# DynamicCity DiT on CarlaSC (reference recipe): 16 x 128 x 128 x 8 windows, HexPlane VAE from
# dynamiccity_vae_*_carlasc.py (frozen), 76 x 76 rollout, DiT-DC/2 with trajectory, command,
# layout and previous-HexPlane conditions (each dropped with p = 0.1), AdamW 1e-4, batch
# 16 x 8 GPUs, 1200 epochs, EMA 0.9999 (EMAHook), 1000 linear steps, hybrid loss; sampling:
# ancestral DDPM 1000 steps, CFG 4.0.
#   bash tools/dist_train.sh configs/dynamiccity/dynamiccity_dit_8xb16-1200e_carlasc.py 8 \
#       --cfg-options model.tokenizer_ckpt=work_dirs/<carlasc vae>/best.pth
# The ``hexplane`` condition is learned from batches that carry ``prev_voxels`` (the previous
# window) or a cached ``hexplane`` latent; otherwise it stays null (dropped) in training.
# Training from a latent cache (tools/dataset_converters/cache_latents.py) instead of voxels:
#   train_dataloader.dataset = dict(type='LatentCacheDataset', cache_dir='data/latents/carlasc')
# Generation scoring (configs/_base_/generation_eval.py): one scene sampled per 16-frame Test
# window with its trajectory / command / layout, written to <work_dir>/samples/*.npz, scored by
# the CarlaSC 3D extractor (train it first: configs/evaluation/feature_extractor_3d_1xb4-20e_carlasc.py):
#   python tools/test.py configs/dynamiccity/dynamiccity_dit_8xb16-1200e_carlasc.py DIT_CKPT \
#       --out work_dirs/dit_carlasc_gen.json --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT
_base_ = [
    '../_base_/models/dynamiccity_dit.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
    '../_base_/generation_eval.py',
]
vis_palette = 'dynamiccity_carlasc'
free_label = 0
data_root = 'data/carlasc'
# Windows of 16 + 12 frames: the first 16 are the previous window (the HexPlane condition),
# frames 12..27 the window to generate (model.context_stride = 12 = the stride of
# long-sequence sampling with overlap 4).
pipeline = [dict(type='MakeLayout', classes=('vehicle', ), pool=4), dict(type='PackOccInputs')]
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CarlaSCDataset', data_root=data_root, split='Train', num_frames=28,
                 class_merge='carlasc_to_dynamiccity', masks=(), pipeline=pipeline))
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CarlaSCDataset', data_root=data_root, split='Test', num_frames=16,
                 window_stride=16, class_merge='carlasc_to_dynamiccity', masks=(),
                 pipeline=pipeline, test_mode=True))
test_evaluator = dict(
    extractor='configs/evaluation/feature_extractor_3d_1xb4-20e_carlasc.py',
    reference_cache='work_dirs/generation_eval/carlasc-test-16f_{version}.npz')
default_hooks = dict(save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
