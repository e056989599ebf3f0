# The HexPlane VAE that `make demo` trains: the CPU recipe
# (dynamiccity_vae_cpu-15min_synthetic-city.py, same model and optimiser) on a shorter
# schedule and 256 training scenes (so that the demo's latent cache stays small), sized so that
# the whole demo (both stages) fits 10 minutes on 2 idle cores. Measured numbers:
# configs/dynamiccity/README.md ("Learning on CPU").
#   python tools/demo.py
_base_ = ['./dynamiccity_vae_cpu-15min_synthetic-city.py']
train_dataloader = dict(dataset=dict(num_scenes=256))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=150, end=300, T_max=150,
         eta_min=1e-4),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
default_hooks = dict(checkpoint=dict(interval=300))
