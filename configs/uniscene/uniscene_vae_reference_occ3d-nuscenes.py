# UniScene occupancy VAE as the reference computes it (Arlo0o/UniScene @ e98413d,
# occupancy_gen/config/train_vae_4_DwT_L_me.py): the config of a released VAE converted by
#   python tools/model_converters/uniscene_to_occworld4d.py ckpt/VAE/epoch_296.pth \
#       work_dirs/uniscene_vae_reference.pth
#   python tools/test.py configs/uniscene/uniscene_vae_reference_occ3d-nuscenes.py \
#       work_dirs/uniscene_vae_reference.pth
# axial_mode='reference': the encoder's 2D axial blocks attend along W and along the per-head
# channel axis (never along H), as the released encoder does; kl_quirk=True: the reference's
# KL (only matters when training from here). Data, scoring: uniscene_vae_8xb1-200e's.
_base_ = ['./uniscene_vae_8xb1-200e_occ3d-nuscenes.py']
model = dict(axial_mode='reference', kl_quirk=True)
