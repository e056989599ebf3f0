# DynamicCity VAE recipe: Adam lr 1e-3, MultiStep [50, 60, 70, 80, 90] x 0.7, 100 epochs.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[50, 60, 70, 80, 90], gamma=0.7),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
