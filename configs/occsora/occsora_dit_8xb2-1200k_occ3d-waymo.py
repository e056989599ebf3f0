# OccSora stage 2 on Occ3D-Waymo (10 slots, 32-frame windows of
# 200 x 200 x 16 at 10 Hz): the trajectory-conditioned DiT over the frozen
# tokenizer of occsora_vqvae_8xb1-150e_occ3d-waymo.py (tokens 128 x 4 x 25 x 25; 32 trajectory rows
# -> 64 MLP inputs). Recipe as on nuScenes: AdamW 1e-5, EMA 0.9999, batch 2 x 8 GPUs,
# 1.2 M iterations.
#   bash tools/dist_train.sh configs/occsora/occsora_dit_8xb2-1200k_occ3d-waymo.py 8 \
#       --cfg-options model.tokenizer_ckpt=work_dirs/occsora_vqvae_8xb1-150e_occ3d-waymo
# Generation scoring (configs/_base_/generation_eval.py): one scene sampled per 32-frame
# validation window (stride 32) with its trajectory, written to <work_dir>/samples/*.npz, scored
# by the Occ3D-Waymo 3D extractor (train it first:
# configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-waymo.py):
#   python tools/test.py configs/occsora/occsora_dit_8xb2-1200k_occ3d-waymo.py DIT_CKPT \
#       --out gen.json --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT
_base_ = ['../_base_/datasets/occ3d_waymo.py', '../_base_/recipes/occsora_dit_8xb2-1200k.py']
num_frames = 32
vis_palette = 'dynamiccity_waymo'
latent_shape = (128, 4, 25, 25)
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=10),
    tokenizer=dict(num_classes=10, height=16, embed_dim=8),
    latent_shape=latent_shape,
    denoiser=dict(latent_shape=latent_shape, num_frames=num_frames))
train_dataloader = dict(batch_size=2, num_workers=4, dataset=dict(num_frames=num_frames))
val_dataloader = None
test_dataloader = dict(
    batch_size=2,
    dataset=dict(num_frames=num_frames, window_stride=num_frames, masks=(),
                 pipeline=[dict(type='PackOccInputs')]))
test_evaluator = dict(
    extractor='configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-waymo.py',
    reference_cache='work_dirs/generation_eval/occ3d-waymo-val-32f_{version}.npz')
