# DynamicCity DiT on CarlaSC as the reference trains and samples it (3DTopia/DynamicCity @
# eaf0c6e, conf/dit/model/dit.yaml): DiT-DC/2 with every condition off (hex_cond, layout_cond,
# traj_cond, cmd_cond all false), so no condition dropout, and sampling without guidance (the
# reference's CFG 4.0 with every condition dropped in both halves is the unguided model).
# Training loss as the reference's (dynamic_city/diffusion/gaussian_diffusion.py,
# training_losses): the MSE masked to the valid rollout cells, the VB term averaged over all
# 76 x 76 cells, padding included (diffusion.vb_average='all'; ours masks both).
# The config of a released DynamicCity DiT converted by
#   python tools/model_converters/dynamiccity_to_occworld4d.py ckpts/<dit run>/<step>.ckpt \
#       work_dirs/dynamiccity_dit_reference.pth
# which also converts the run's VAE (ckpts/<vae_name>/) into model.tokenizer and prints the
# --cfg-options for sizes that differ from CarlaSC's. Everything else (data, scoring) is
# dynamiccity_dit_8xb16-1200e_carlasc.py's; see configs/dynamiccity/README.md.
_base_ = ['./dynamiccity_dit_8xb16-1200e_carlasc.py']
model = dict(
    denoiser=dict(conditions=()),
    diffusion=dict(vb_average='all'),
    cond_drop_prob=0.0,
    context_stride=None,
    sample_cfg=dict(guidance_scale=1.0))
# No previous-window (hexplane) condition: plain 16-frame training windows.
train_dataloader = dict(dataset=dict(num_frames=16))
