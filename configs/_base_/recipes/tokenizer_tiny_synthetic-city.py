# The tiny tokenizer recipe on the tiny synthetic city (8 frames x 32 x 32 x 8, 12 classes,
# free 0) shared by the tiny OccWorld VQ-VAE and UniScene KL-VAE (the child adds its model base
# and the tiny model sizes): 4 epochs, 10 warm-up iterations then cosine, validation every 2
# epochs in the DynamicCity convention. Trains on a CPU in about a minute.
_base_ = [
    '../datasets/synthetic_city_tiny.py',
    '../schedules/adamw_cosine_200e.py',
    '../default_runtime.py',
]
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, T_max=4, eta_min=1e-5,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=2)
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
