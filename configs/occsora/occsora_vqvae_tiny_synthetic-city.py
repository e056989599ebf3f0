# Tiny OccSora 4D VQ-VAE on the tiny synthetic city (8 frames x 32 x 32 x 8, 12 classes, free 0):
# width 32, one attention-residual block, downsampling (2, 4, 4) -> 16 x 4 x 8 x 8 tokens,
# 64 codes (dead codes restarted after 20 unused steps), AdamW lr 4e-3 (the tiny net needs more
# than the reference's 1e-3), 8 epochs of 8 iterations: about a minute on one idle CPU core.
#   python tools/train.py configs/occsora/occsora_vqvae_tiny_synthetic-city.py
_base_ = [
    '../_base_/models/occsora_vqvae.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/schedules/adamw_cosine_200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12, height=8, hidden=32, num_res_blocks=1, token_preset=None,
    downsample=(2, 4, 4), z_channels=16,
    quantizer=dict(num_codes=64, code_dim=16, restart_dead=True, dead_window=20))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, T_max=8, eta_min=1e-5,
         convert_to_iter_based=True),
]
optim_wrapper = dict(optimizer=dict(lr=4e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=4)
val_evaluator = dict(type='OccupancyMetric', convention='dynamiccity',
                     vocabulary='dynamiccity_carlasc')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=4))
