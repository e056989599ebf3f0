# OccSora stage-1 recipe: everything of configs/occsora/occsora_vqvae_8xb1-150e_{dataset}.py but
# the dataset. The 4D VQ-VAE of ../models/occsora_vqvae.py, batch 1 per GPU on 8 GPUs, AdamW
# lr 1e-3, wd 0.01, gradient clipping at 35, 200 warm-up iterations then cosine over 150 epochs,
# validation every 10 epochs, the best checkpoint kept by the child's save_best.
# A child lists its dataset base next to this file:
#   _base_ = ['../_base_/datasets/<dataset>.py', '../_base_/recipes/occsora_vqvae_8xb1-150e.py']
# and sets num_frames = 32, the dataloader overrides, model (classes / height / embedding),
# val_evaluator / test_evaluator and default_hooks.checkpoint.save_best.
_base_ = [
    '../models/occsora_vqvae.py',
    '../schedules/adamw_cosine_200e.py',
    '../default_runtime.py',
]
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, T_max=150, eta_min=1e-6,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=150, val_interval=10)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     rule='greater'))
