# Generation scoring through tools/test.py, for latent-diffusion configs (DynamicCity; OccSora
# and UniScene DiT configs inherit it the same way). The test loop calls the model's predict:
# one scene sampled per test window with that window's conditions (LatentDiffusion.predict);
# the SaveOccSamplesHook writes each sample as npz under <work_dir>/samples/; GenerationMetric
# scores the samples against the windows' ground truth in a trained feature extractor's space
# (FID, KID, precision / recall, IS, TC; keys 'gen<2d|3d>@<extractor version>/FID', ...).
# The reference features of the split are computed once and cached per window and extractor
# version in reference_cache.
#
# A child config adds this file to its _base_ and sets (literal values, see
# configs/dynamiccity/dynamiccity_dit_8xb16-1200e_carlasc.py):
#   test_dataloader = <the split, with the transforms that build the model's conditions>
#   test_cfg = dict(type='TestLoop')
#   test_evaluator = dict(
#       extractor='configs/evaluation/feature_extractor_3d_<recipe>_<dataset>.py',  # same vocabulary
#       reference_cache='work_dirs/generation_eval/<dataset>-<split>_{version}.npz')
#   default_hooks = dict(save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
# and scores a checkpoint with the extractor checkpoint the user trained:
#   python tools/train.py configs/evaluation/feature_extractor_3d_<recipe>_<dataset>.py
#   python tools/test.py CONFIG CKPT --out metrics.json \
#       --cfg-options test_evaluator.checkpoint=work_dirs/<extractor run>/epoch_20.pth
# (--sample-dir DIR moves the npz files; numbers are comparable only under one extractor
# version and one number of windows: FID is biased at small N.)
test_evaluator = dict(
    type='GenerationMetric',
    extractor=None,            # path of the extractor config (the child sets it)
    checkpoint=None,           # the extractor checkpoint: --cfg-options test_evaluator.checkpoint=
    reference_cache=None,      # npz of per-window reference features; '{version}' is replaced
    statistics=('fid', 'kid', 'pr', 'is', 'tc'),  # (a 'metrics' key would make an Evaluator)
    kid_subsets=100,
    kid_subset_size=1000,
    pr_k=3,
    is_splits=10)
