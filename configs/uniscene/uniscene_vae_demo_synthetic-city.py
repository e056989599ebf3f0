# The UniScene occupancy KL-VAE that `make demo` trains: the CPU recipe
# (uniscene_vae_cpu-15min_synthetic-city.py, same model, data and optimiser) on a shorter
# schedule, so that the whole demo (both stages) fits 10 minutes on 2 idle cores.
# Measured numbers: docs/learning.md ("make demo").
#   python tools/demo.py
_base_ = ['./uniscene_vae_cpu-15min_synthetic-city.py']
max_iters = 420
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, T_max=max_iters - 50,
         eta_min=1e-5),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)  # the demo tests it next
default_hooks = dict(checkpoint=dict(interval=max_iters))
val_dataloader = dict(dataset=dict(num_scenes=16))
test_dataloader = val_dataloader
