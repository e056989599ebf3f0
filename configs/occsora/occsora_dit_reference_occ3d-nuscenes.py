# OccSora stage 2 with the reference's behaviour (wzzheng/OccSora @ 9f8d1f0, models.py /
# train_2.py / sample.py), for checkpoints converted from the reference by
# tools/model_converters/occsora_to_occworld4d.py (configs/occsora/README.md, "Evaluate the
# released checkpoint"). Same network, data and test protocol as
# occsora_dit_8xb2-1200k_occ3d-nuscenes.py; what differs is what a converted checkpoint needs:
# * trajectory_scale=1.0: the reference feeds the condition values raw (ours: metres x 0.1);
# * learn_pos_embed=True: the reference trains its positional table (loaded from the checkpoint
#   either way; this only matters when training on from it);
# * cond_drop_prob=0.0: the reference never drops the condition in training;
# * guidance_scale=1.0: the reference's forward_with_cfg feeds the same condition to both halves,
#   so its classifier-free guidance returns the conditional prediction; 1.0 computes exactly that
#   (sampling: DDPM, 1000 steps, as sample.py's default --num-sampling-steps).
#   python tools/model_converters/occsora_to_occworld4d.py DIT.pt dit_occworld4d.pth \
#       --tokenizer VQVAE.pth
#   python tools/sample.py configs/occsora/occsora_dit_reference_occ3d-nuscenes.py \
#       dit_occworld4d.pth --task trajectory --trajectory straight
_base_ = ['./occsora_dit_8xb2-1200k_occ3d-nuscenes.py']
model = dict(
    denoiser=dict(trajectory_scale=1.0, learn_pos_embed=True),
    cond_drop_prob=0.0,
    sample_cfg=dict(guidance_scale=1.0))
