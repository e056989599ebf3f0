# The tiny DynamicCity DiT trained from a latent cache (stage 2 as in the paper: the HexPlanes of
# the training windows are encoded once, then the DiT trains without running the VAE).
#   python tools/dataset_converters/cache_latents.py \
#       configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py VAE_CKPT --out work_dirs/latents
#   python tools/train.py configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city-latents.py \
#       --cfg-options model.tokenizer_ckpt=VAE_CKPT train_dataloader.dataset.cache_dir=work_dirs/latents
# Cached windows carry no previous window, so the HexPlane-continuation condition is always
# null here (train it with the voxel config, which uses context_stride).
_base_ = ['./dynamiccity_dit_tiny_synthetic-city.py']
model = dict(context_stride=None)
# No VAE in the loop: ~0.02 s per iteration on a CPU, so many more epochs fit.
train_cfg = dict(max_epochs=200)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=50))
custom_hooks = [dict(type='EMAHook', momentum=0.01, update_buffers=True, priority=49)]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='LatentCacheDataset', cache_dir='work_dirs/latents'))
