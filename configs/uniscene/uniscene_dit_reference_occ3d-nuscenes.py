# UniScene OccDiT as the reference evaluates it (Arlo0o/UniScene @ e98413d,
# occupancy_gen/eval_OccDiT.py + run_eval_dit.sh): the config of a released OccDiT converted
# with its VAE by
#   python tools/model_converters/uniscene_to_occworld4d.py ckpt/DiT/0600000.pt \
#       work_dirs/uniscene_dit_reference.pth --vae ckpt/VAE/epoch_296.pth
# Reference behaviour: the VAE encoder's axial attention as released (axial_mode='reference'),
# the 4-value occupancy meta embedder (use_meta, meta_num=4) and the ground-truth prior of its
# evaluation (x_T = noise + 0.05 x the encoded ground-truth first frame, meta of that frame:
# reference_gt_prior=True), exact GELU (the denoiser's default mlp_act='gelu'), DDIM 50 at
# --cfg-scale 1.0 (run_eval_dit.sh; guidance 1 = the conditional model). The prior reads the
# ground truth: its numbers are the reference's table, not a generation benchmark.
_base_ = ['./uniscene_dit_8xb4-1200e_occ3d-nuscenes.py']
model = dict(
    tokenizer=dict(axial_mode='reference', kl_quirk=True),
    denoiser=dict(conditions=('layout', 'meta'), meta_dim=4, mlp_act='gelu'),
    reference_gt_prior=True,
    noise_prior_weight=0.05,
    prior_frame=0,
    sample_cfg=dict(sampler='ddim', num_steps=50, guidance_scale=1.0, eta=0.0))
