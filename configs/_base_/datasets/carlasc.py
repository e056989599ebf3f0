# CarlaSC (Cartesian): 128 x 128 x 8 voxels of 0.4 x 0.4 x 0.375 m over
# [-25.6, -25.6, -2.0, 25.6, 25.6, 1.0] m at 10 Hz, remapped to DynamicCity's 12 slots
# (0 free, slot 11 bicycle unused). As DynamicCity: 16-frame windows with stride 1 over each
# town folder, training on Train and validating on Test; valid_mask = voxels with points.
# Trajectory / command from poses.txt (DynamicCity's rule); add
# dict(type='MakeLayout', classes=('vehicle', ), pool=4) before PackOccInputs for the layout.
dataset_type = 'CarlaSCDataset'
data_root = 'data/carlasc'
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
        type=dataset_type, data_root=data_root, split='Train', num_frames=num_frames,
        window_stride=1, class_merge='carlasc_to_dynamiccity', masks=('valid_mask', ),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='Test', num_frames=num_frames,
        window_stride=num_frames, class_merge='carlasc_to_dynamiccity',
        masks=('valid_mask', ), pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
