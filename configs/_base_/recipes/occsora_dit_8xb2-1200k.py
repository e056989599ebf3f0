# OccSora stage-2 recipe: everything of configs/occsora/occsora_dit_8xb2-1200k_{dataset}.py but
# the dataset. The trajectory-conditioned DiT of ../models/occsora_dit.py, AdamW lr 1e-5
# (reference), constant LR, EMA 0.9999 (EMAHook), 1.2 M iterations with a checkpoint every 10 k,
# no validation loop, generation scoring through tools/test.py (../generation_eval.py) with every
# sample written to <work_dir>/samples/*.npz.
# A child lists its dataset base next to this file:
#   _base_ = ['../_base_/datasets/<dataset>.py', '../_base_/recipes/occsora_dit_8xb2-1200k.py']
# and sets what depends on the dataset: num_frames = 32, vis_palette, model (classes / tokens),
# test_evaluator (extractor + reference_cache) and the dataloader overrides (train batch 2;
# val_dataloader = None; test windows of 32 frames, stride 32, with the trajectory). mmengine
# forbids one key in two bases, so the dataloader keys stay with the dataset base and the child.
_base_ = [
    '../models/occsora_dit.py',
    '../schedules/adamw_constant_diffusion.py',
    '../default_runtime.py',
    '../generation_eval.py',
]
val_cfg = None
val_evaluator = None
optim_wrapper = dict(optimizer=dict(lr=1e-5))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1_200_000,
                 val_interval=1_200_000)
log_processor = dict(by_epoch=False)
default_hooks = dict(logger=dict(interval=100),
                     checkpoint=dict(by_epoch=False, interval=10_000, max_keep_ckpts=3),
                     save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
