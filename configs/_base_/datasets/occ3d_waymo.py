# Occ3D-Waymo at 0.4 m: 200 x 200 x 16 voxels over [-40, -40, -1, 40, 40, 5.4] m at 10 Hz,
# merged to DynamicCity's 9 classes + free 0 (free 23 or 15 in the files both read as free).
# DynamicCity uses 16-frame windows. Ego poses: the npz `ego2global` when present, else set
# pose_source to a {scene: segment file} dict / .json, or to a folder of segment files
# (v1 .tfrecord or v2 vehicle_pose .parquet) with scene_map={scene: segment name} (or
# pose_pairing='sorted_index': scene NNN = NNN-th file); frame NNN takes the segment's NNN-th
# pose in time order. pose_cache_dir keeps parsed segment poses between runs.
dataset_type = 'Occ3DWaymoDataset'
data_root = 'data/occ3d_waymo'
vocabulary = 'dynamiccity_waymo'
num_classes = 10
free_label = 0
num_frames = 16
grid_size = (200, 200, 16)

train_pipeline = [dict(type='PackOccInputs')]
test_pipeline = [dict(type='PackOccInputs')]

train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='training', num_frames=num_frames,
        window_stride=1, resolution='0.4m', free_label='auto',
        class_merge='occ3d_waymo_to_dynamiccity', pose_source=None, masks=(),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='validation', num_frames=num_frames,
        window_stride=num_frames, resolution='0.4m', free_label='auto',
        class_merge='occ3d_waymo_to_dynamiccity', pose_source=None,
        masks=('mask_camera', ), pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
