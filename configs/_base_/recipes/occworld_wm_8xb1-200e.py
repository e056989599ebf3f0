# OccWorld stage-2 recipe: everything of configs/occworld/occworld_wm_8xb1-200e_{dataset}.py but
# the dataset. The world model of ../models/occworld_world_model.py on its frozen VQ-VAE, batch 1
# per GPU on 8 GPUs, AdamW lr 1e-3, wd 0.01, gradient clipping at 35, 50 warm-up iterations then
# cosine over 200 epochs (reference recipe), the best checkpoint by the mean forecast mIoU.
# A child lists its dataset base next to this file:
#   _base_ = ['../_base_/datasets/<dataset>.py', '../_base_/recipes/occworld_wm_8xb1-200e.py']
# and sets the model (classes / tokens / tokenizer_ckpt), the train / forecast windows
# (dataloader overrides) and val_evaluator / test_evaluator (OccupancyMetric of its vocabulary
# per future step + PlanningMetric).
_base_ = [
    '../models/occworld_world_model.py',
    '../schedules/adamw_cosine_200e.py',
    '../default_runtime.py',
]
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, T_max=200, eta_min=1e-6,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     save_best='occworld/mIoU_avg', rule='greater'))
