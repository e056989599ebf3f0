# OccSora stage 2 on CarlaSC (12 slots, 32-frame windows of 128 x 128 x 8
# at 10 Hz): the trajectory-conditioned DiT over the frozen
# tokenizer of occsora_vqvae_8xb1-150e_carlasc.py (tokens 128 x 4 x 16 x 16; 32 trajectory rows
# -> 64 MLP inputs). Recipe as on nuScenes: AdamW 1e-5, EMA 0.9999, batch 2 x 8 GPUs,
# 1.2 M iterations.
#   bash tools/dist_train.sh configs/occsora/occsora_dit_8xb2-1200k_carlasc.py 8 \
#       --cfg-options model.tokenizer_ckpt=work_dirs/occsora_vqvae_8xb1-150e_carlasc
# Generation scoring (configs/_base_/generation_eval.py): one scene sampled per 32-frame Test
# window (stride 32) with its trajectory, written to <work_dir>/samples/*.npz, scored by the
# CarlaSC 3D extractor (train it first:
# configs/evaluation/feature_extractor_3d_1xb4-20e_carlasc.py):
#   python tools/test.py configs/occsora/occsora_dit_8xb2-1200k_carlasc.py DIT_CKPT \
#       --out gen.json --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT
_base_ = ['../_base_/datasets/carlasc.py', '../_base_/recipes/occsora_dit_8xb2-1200k.py']
num_frames = 32
vis_palette = 'dynamiccity_carlasc'
latent_shape = (128, 4, 16, 16)
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    tokenizer=dict(num_classes=12, height=8, embed_dim=16),
    latent_shape=latent_shape,
    denoiser=dict(latent_shape=latent_shape, num_frames=num_frames))
train_dataloader = dict(batch_size=2, num_workers=4, dataset=dict(num_frames=num_frames))
val_dataloader = None
test_dataloader = dict(
    batch_size=2,
    dataset=dict(num_frames=num_frames, window_stride=num_frames, masks=(),
                 pipeline=[dict(type='PackOccInputs')]))
test_evaluator = dict(
    extractor='configs/evaluation/feature_extractor_3d_1xb4-20e_carlasc.py',
    reference_cache='work_dirs/generation_eval/carlasc-test-32f_{version}.npz')
