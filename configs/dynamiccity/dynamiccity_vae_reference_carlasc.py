# DynamicCity HexPlane VAE on CarlaSC as the reference trains it (3DTopia/DynamicCity @ eaf0c6e,
# conf/vae/carlasc.yaml): the CarlaSC recipe with the reference's CE class weights
# (dynamic_city/utils/loss_utils.py, calculate_ce_weight: p_c + 1e-10 in the ratio, so the
# unseen slot 11 weighs 2069.43 where dynamiccity_vae_8xb1-100e_carlasc.py gives it 0; no
# CarlaSC voxel has label 11, so the loss is the same up to ~1e-9 either way). Everything
# else, the evaluation included, is dynamiccity_vae_8xb1-100e_carlasc.py's. The config of a
# released DynamicCity VAE converted by
#   python tools/model_converters/dynamiccity_to_occworld4d.py ckpts/<vae run>/<best>.ckpt \
#       work_dirs/dynamiccity_vae_reference.pth
# (which prints the --cfg-options for sizes that differ from CarlaSC's); see
# configs/dynamiccity/README.md, "Differences from the reference and their switches".
_base_ = ['./dynamiccity_vae_8xb1-100e_carlasc.py']
model = dict(class_weight_eps=1e-10)
