# OccSora stage 2 on Occ3D-nuScenes (the paper's setting): the trajectory-conditioned DiT over the
# frozen tokenizer of occsora_vqvae_8xb1-150e_occ3d-nuscenes.py. 32-frame windows (stride 1) ->
# tokens 128 x 4 x 25 x 25 / 10; AdamW lr 1e-5 (reference), constant LR, EMA 0.9999 (EMAHook),
# batch 2 x 8 GPUs, 1.2 M iterations (paper: 108 h on 8 x A100, 47 GB a GPU).
#   bash tools/dist_train.sh configs/occsora/occsora_dit_8xb2-1200k_occ3d-nuscenes.py 8 \
#       --cfg-options model.tokenizer_ckpt=work_dirs/occsora_vqvae_8xb1-150e_occ3d-nuscenes
#   python tools/sample.py configs/occsora/occsora_dit_8xb2-1200k_occ3d-nuscenes.py \
#       work_dirs/occsora_dit_8xb2-1200k_occ3d-nuscenes --task trajectory \
#       --trajectory left --device cuda
# Training from a latent cache instead of encoding every batch (the reference trains on saved
# tokens): tools/dataset_converters/cache_latents.py, then
#   train_dataloader.dataset = dict(type='LatentCacheDataset', cache_dir='data/latents/occsora_nus')
# Generation scoring (configs/_base_/generation_eval.py): one scene sampled per 32-frame val
# window (stride 32: one a scene) with its trajectory, written to <work_dir>/samples/*.npz,
# scored by the 18-class Occ3D-nuScenes 3D extractor (train it first:
# configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-nuscenes.py):
#   python tools/test.py configs/occsora/occsora_dit_8xb2-1200k_occ3d-nuscenes.py DIT_CKPT \
#       --out gen.json --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT
_base_ = ['../_base_/datasets/occ3d_nuscenes.py', '../_base_/recipes/occsora_dit_8xb2-1200k.py']
num_frames = 32
vis_palette = 'occ3d_nuscenes'
train_dataloader = dict(batch_size=2, num_workers=4, dataset=dict(num_frames=num_frames))
val_dataloader = None
test_dataloader = dict(
    batch_size=2,
    dataset=dict(num_frames=num_frames, window_stride=num_frames, masks=(),
                 pipeline=[dict(type='PackOccInputs')]))
test_evaluator = dict(
    extractor='configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-nuscenes.py',
    reference_cache='work_dirs/generation_eval/occ3d-nuscenes-val-32f_{version}.npz')
