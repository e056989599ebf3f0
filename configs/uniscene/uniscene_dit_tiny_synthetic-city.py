# Tiny UniScene OccDiT on the tiny synthetic city (8 frames x 32 x 32 x 8, 12 classes, free 0):
# the tiny VAE of uniscene_vae_tiny_synthetic-city.py (latent 4 x 16 x 16 a frame), OccDiT
# 'UniScene-tiny' (depth 2, width 32, 2 heads, patch 2: 64 tokens a frame), the layout of every
# frame rasterized from the window's own occupancy (the synthetic city has no boxes) and
# max-pooled to 16 x 16, 100 diffusion steps, DDIM 10 for sampling. Trains on a CPU in about a
# minute. Point model.tokenizer_ckpt at the tiny VAE's checkpoint for meaningful samples:
#   python tools/train.py configs/uniscene/uniscene_vae_tiny_synthetic-city.py
#   python tools/train.py configs/uniscene/uniscene_dit_tiny_synthetic-city.py \
#       --cfg-options model.tokenizer_ckpt=work_dirs/uniscene_vae_tiny_synthetic-city
#   python tools/sample.py configs/uniscene/uniscene_dit_tiny_synthetic-city.py \
#       work_dirs/uniscene_dit_tiny_synthetic-city --task layout --input scene.npz \
#       --lidar --cameras nuscenes   # the preset six-camera rig (or an info .pkl)
# Scoring of the 4 val windows (the pattern of configs/_base_/generation_eval.py, with a list of
# two metrics): one scene sampled per window from its layout, written to
# <work_dir>/samples/*.npz, scored by [0] GenerationMetric (FID / KID / P-R / IS / TC with the
# tiny 3D extractor; its defaults are generation_eval.py's) and [1] OccupancyMetric (mIoU / IoU
# of the sample against the window's ground truth, UniScene's table). The extractor checkpoint
# goes to test_evaluator.0 (CPU test: tests/test_tools/test_stage2_generation_eval_cli.py):
#   python tools/train.py configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py
#   python tools/test.py configs/uniscene/uniscene_dit_tiny_synthetic-city.py DIT_CKPT \
#       --out gen.json --cfg-options test_evaluator.0.checkpoint=EXTRACTOR_CKPT
_base_ = [
    '../_base_/models/uniscene_dit.py',
    '../_base_/datasets/synthetic_city_tiny.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
]
vis_palette = 'dynamiccity_carlasc'
num_frames = 8
pc_range = [-25.6, -25.6, -2.0, 25.6, 25.6, 1.0]  # the synthetic city's CarlaSC preset
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    tokenizer=dict(
        num_classes=12, height=8, ch=16, ch_mult=(1, 2), num_res_blocks=1,
        attn_resolutions=(16, ), resolution=32, dec_hidden=8, dec_ch_mult=(2, 1),
        dec_res_blocks=1),
    # std of the tiny VAE's posterior means after its 4 epochs: 1.83 on 4 synthetic windows;
    # x 0.5 brings the latent to about unit variance (the reference's x 70 does the same for
    # its VAE).
    latent_scale=0.5,
    latent_shape=(4, num_frames, 16, 16),
    latent_adapter=dict(stride=(1, 2, 2)),  # 8 x 32 x 32 voxels over 8 x 16 x 16 cells
    denoiser=dict(input_size=16, num_frames=num_frames, arch='UniScene-tiny'),
    diffusion=dict(num_timesteps=100),
    sample_cfg=dict(sampler='ddim', num_steps=10),
)
layout = dict(type='UniSceneLayout', source='occupancy', out_size=16)
train_dataloader = dict(dataset=dict(pipeline=[layout, dict(type='PackOccInputs')]))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
test_dataloader = dict(dataset=dict(pipeline=[layout, dict(type='PackOccInputs')]))
test_evaluator = [
    dict(type='GenerationMetric',
         extractor='configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py',
         checkpoint=None,
         reference_cache='work_dirs/generation_eval/synthetic-city-tiny-val-8f_{version}.npz',
         is_splits=2),
    dict(type='OccupancyMetric', convention='dynamiccity', vocabulary='dynamiccity_carlasc'),
]
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=8),
                     save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
# A short run: a faster EMA than the reference's 0.9999 so the EMA weights move.
custom_hooks = [dict(type='EMAHook', momentum=0.05, update_buffers=True, priority=49)]
