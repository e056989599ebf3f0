# The CPU learning recipes' stage-2 schedule (UniScene OccDiT, OccSora DiT, DynamicCity DiT on
# the synthetic city): AdamW lr 1e-3 after a 50-iteration linear warm-up, then constant;
# iteration-based training without a val loop (the recipes score samples in tools/test.py);
# EMA momentum 0.01; samples written by SaveOccSamplesHook. Each recipe sets max_iters in
# train_cfg and its checkpoint interval.
_base_ = ['./adamw_constant_diffusion.py', '../default_runtime.py']
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50)]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1000, val_interval=1001)
val_cfg = None
test_cfg = dict(type='TestLoop')
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=4),
    save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
custom_hooks = [dict(type='EMAHook', momentum=0.01, update_buffers=True, priority=49)]
