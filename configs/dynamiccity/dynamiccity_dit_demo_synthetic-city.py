# The rollout DiT that `make demo` trains on the latent cache of
# dynamiccity_vae_demo_synthetic-city.py: the CPU recipe
# (dynamiccity_dit_cpu-30min_synthetic-city.py, same tokenizer, diffusion and conditions)
# with a smaller DiT (depth 4, width 128) on a shorter schedule, so that the whole demo
# fits 10 minutes on 2 idle cores.
#   python tools/demo.py
_base_ = ['./dynamiccity_dit_cpu-30min_synthetic-city.py']
model = dict(denoiser=dict(depth=4, hidden_size=128, num_heads=4))
train_cfg = dict(max_iters=600, val_interval=601)
default_hooks = dict(checkpoint=dict(interval=600))
custom_hooks = [dict(type='EMAHook', momentum=0.005, update_buffers=True, priority=49)]
