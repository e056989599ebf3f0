# DynamicCity HexPlane VAE (reference 3DTopia/DynamicCity @ eaf0c6e) at the CarlaSC default:
# 16 frames x 128 x 128 x 8 voxels, 12 class slots -> HexPlane C = 16: xy 64x64, xz 64x4,
# yz 64x4, tx 8x64, ty 8x64, tz 8x4 (compression 23.14). 1,699,288 parameters
# (encoder 192,688 + heads 3,264 + decoder 1,503,336), equal to the reference.
# Ablation switches: projection='avgpool', decoder='query', fusion='sum',
# projection_readout='token'. Downsampling presets (dT, dX, dY, dZ) in
# configs/dynamiccity/README.md.
model = dict(
    type='HexPlaneVAE',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    num_classes=12,
    num_frames=16,
    spatial_size=(128, 128, 8),
    latent_channels=16,
    voxel_down=(1, 1, 1),  # log2 (x, y, z) of the voxel encoders (stride-2 conv)
    plane_down=(1, 0, 0, 0),  # log2 (t, x, y, z) of the plane downsamplers
    projection='transformer',  # 'transformer' (Projection Module) | 'avgpool'
    projection_readout='faithful',  # 'faithful' (reference: index 0) | 'token'
    transformer_depth=2,
    transformer_heads=2,
    transformer_mlp_dim=32,
    dropout=0.1,
    projection_attn_drop=None,  # None = dropout (reference); 0.0 = fused CPU attention
    decoder='expansion_squeeze',  # 'expansion_squeeze' | 'query'
    fusion='hadamard',  # 'hadamard' | 'sum'
    query_channels=64,
    hidden_channels=128,
    high_res_channels=32,
    num_freq=3,
    frame_chunk=None,  # e.g. 4: checkpointed decoding in chunks of 4 frames (less memory)
    # CarlaSC class counts merged to the 12 slots (reference semantic_frequency);
    # CE weights (max p / p_c) ** (1/3); None = unweighted CE.
    class_frequencies=[3763643297, 39644538, 35784542, 7132457, 546581, 2428186, 187960416,
                       73801722, 105036782, 20811569, 9942710, 0],
    loss_ce_weight=1.0,
    loss_lovasz_weight=1.0,
    loss_kl_weight=0.0015,
    ignore_index=255,
)
