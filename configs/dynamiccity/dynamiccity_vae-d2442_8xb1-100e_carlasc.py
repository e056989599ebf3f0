# Downsampling-rate ablation of the paper, (dT, dX, dY, dZ) = (2, 4, 4, 2) on CarlaSC
# (the default dynamiccity_vae_8xb1-100e_carlasc.py is (2, 2, 2, 2)).
# dX = 2 ** (voxel_down x + plane_down x), dT = 2 ** plane_down t, etc.
_base_ = ['./dynamiccity_vae_8xb1-100e_carlasc.py']
model = dict(voxel_down=(1, 1, 1), plane_down=(1, 1, 1, 0))
