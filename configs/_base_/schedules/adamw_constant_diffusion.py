# DiT recipe (DynamicCity / OccSora): AdamW lr 1e-4, no weight decay, constant LR, EMA 0.9999
# through mmengine's EMAHook (the EMA weights are what val/test and sampling use).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
param_scheduler = []
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1200, val_interval=100)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority=49)]
