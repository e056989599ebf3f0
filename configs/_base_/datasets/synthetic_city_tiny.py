# Synthetic 4D city, tiny: 8 frames x 32 x 32 x 8 voxels over CarlaSC's range (1.6 m x 1.6 m x
# 0.375 m voxels), DynamicCity's 12-slot CarlaSC vocabulary. Generated in memory (no files);
# what the CPU tests and the demo configs train on. Same seed, same data.
dataset_type = 'SyntheticCityDataset'
vocabulary = 'dynamiccity_carlasc'
num_classes = 12  # free + 11 classes (slot 11 'bicycle' never appears in the city)
free_label = 0
num_frames = 8
grid_size = (32, 32, 8)

train_pipeline = [dict(type='PackOccInputs')]
test_pipeline = [dict(type='PackOccInputs')]

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, num_scenes=16, num_frames=num_frames, grid_size=grid_size,
        preset='carlasc', vocabulary=vocabulary, seed=0, masks=('valid_mask', ),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, num_scenes=4, num_frames=num_frames, grid_size=grid_size,
        preset='carlasc', vocabulary=vocabulary, seed=1, masks=('valid_mask', ),
        pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
