# The layout-conditioned OccDiT that `make demo` trains on the latent cache of
# uniscene_vae_demo_synthetic-city.py: the CPU recipe (uniscene_dit_cpu-30min_synthetic-city.py,
# same blocks, diffusion, one-hot layout and optimiser) on 384 cached training windows and a
# shorter, cosine schedule, so that the whole demo fits 10 minutes on 2 idle cores. The demo
# generates one scene per val window from that window's layout (tools/test.py --sample-dir) and
# scores them with score_samples.py, so the test metric here is only the samples' mIoU against the
# windows their layouts came from (no feature extractor needed).
#   python tools/demo.py
_base_ = ['./uniscene_dit_cpu-30min_synthetic-city.py']
latent_source_dataset = dict(num_scenes=384)
max_iters = 280
param_scheduler = [  # a short run: warm-up, then cosine to 1e-5 (the recipe stays constant)
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=30, end=max_iters,
         T_max=max_iters - 30, eta_min=1e-5),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
test_dataloader = dict(dataset=dict(num_scenes=8))
test_evaluator = dict(_delete_=True, type='OccupancyMetric', convention='dynamiccity',
                      vocabulary='dynamiccity_carlasc', mask_key='valid_mask')
