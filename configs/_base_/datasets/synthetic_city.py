# Synthetic 4D city at CarlaSC's size: 16 frames x 128 x 128 x 8 voxels over
# [-25.6, -25.6, -2.0, 25.6, 25.6, 1.0] m at 10 Hz, DynamicCity's 12-slot CarlaSC vocabulary
# (slot 11 'bicycle' unused, as on CarlaSC). Windows are generated on the fly (about 0.3 s
# each on one core); scenario straight / left / right / stop cycles with the index.
# To write the same scenes as a CarlaSC tree instead:
#   python tools/dataset_converters/make_synthetic_city.py --format carlasc \
#       --out data/synthetic_carlasc --num-scenes 100 --num-frames 16 --grid 128 128 8
dataset_type = 'SyntheticCityDataset'
vocabulary = 'dynamiccity_carlasc'
num_classes = 12
free_label = 0
num_frames = 16
grid_size = (128, 128, 8)

train_pipeline = [dict(type='PackOccInputs')]
test_pipeline = [dict(type='PackOccInputs')]

train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, num_scenes=2000, num_frames=num_frames, grid_size=grid_size,
        preset='carlasc', vocabulary=vocabulary, seed=0, masks=('valid_mask', ),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, num_scenes=200, num_frames=num_frames, grid_size=grid_size,
        preset='carlasc', vocabulary=vocabulary, seed=1, masks=('valid_mask', ),
        pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
