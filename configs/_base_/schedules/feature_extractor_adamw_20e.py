# Training recipe of the occupancy feature extractors (generation metrics): AdamW 1e-3,
# cosine over 20 epochs. The extractor is trained on its own objective, so there is no
# validation / test loop with occupancy metrics (children also set val_dataloader /
# test_dataloader = None, which their dataset base defines).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=20, eta_min=1e-5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20)
val_cfg = None
val_evaluator = None
test_cfg = None
test_evaluator = None
