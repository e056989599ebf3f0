# Occupancy feature extractor (2D) for the generation metrics (FID / KID / P-R / IS / TC).
# See docs/evaluation.md for the features, the training objective and versioning.
model = dict(
    type='OccFeatureExtractor2D',
    num_classes=12,                 # K incl. free (DynamicCity CarlaSC layout)
    free_label=0,
    dataset_name='synthetic_city',  # enters the version hash: set it to the training set
    # feat_dim: size of the global part. The per-frame feature D used by FID / KID / P-R / TC
    # is feat_dim + 2 K (K = num_classes incl. free: class histogram + reconstruction NLL per
    # class, the default local_parts) + 2 C_s (channel mean + std, C_s = base_channels x 2^s)
    # per stage s in local_stages (none by default): 256 + 2 x 12 = 280 here.
    feat_dim=256,
    base_channels=32,               # doubled at each of num_stages stride-2 stages
    num_stages=3,
    layout_grid=4,                  # G x G BEV cells of the layout target
    num_commands=4,                 # STATIC / FORWARD / LEFT / RIGHT (IS classifier)
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12))
