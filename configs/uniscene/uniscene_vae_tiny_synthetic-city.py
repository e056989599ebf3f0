# Tiny UniScene occupancy VAE on the tiny synthetic city (8 frames x 32 x 32 x 8, 12 classes,
# free 0): encoder width 16, one downsampling (latent 4 x 16 x 16 a frame), decoder width 8.
# Trains on a CPU in about a minute.
#   python tools/train.py configs/uniscene/uniscene_vae_tiny_synthetic-city.py
_base_ = [
    '../_base_/models/uniscene_vae.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/schedules/adamw_cosine_200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12, height=8, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16, ),
    resolution=32, dec_hidden=8, dec_ch_mult=(2, 1), dec_res_blocks=1, kl_weight=1e-3)
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
