# Downsampling-rate ablation of the paper, (dT, dX, dY, dZ) = (1, 1, 1, 1) on CarlaSC
# (the default dynamiccity_vae_8xb1-100e_carlasc.py is (2, 2, 2, 2)).
# dX = 2 ** (voxel_down x + plane_down x), dT = 2 ** plane_down t, etc.
_base_ = ['./dynamiccity_vae_8xb1-100e_carlasc.py']
model = dict(voxel_down=(0, 0, 0), plane_down=(0, 0, 0, 0))
