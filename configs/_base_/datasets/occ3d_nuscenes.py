# Occ3D-nuScenes: 200 x 200 x 16 voxels of 0.4 m over [-40, -40, -1, 40, 40, 5.4] m at 2 Hz,
# classes 0..16 (nuScenes-lidarseg-16) + 17 free. Windows of `num_frames` keyframes that never
# cross a scene; trajectory from ego2global, command from the infos' gt_ego_fut_cmd.
# Tree and preparation: docs/datasets.md. Infos from the raw tables:
#   python tools/dataset_converters/create_nuscenes_occ_infos.py --dataroot data/nuscenes \
#       --version v1.0-trainval --scenes <split scene list .json> --out <ann file>
# DynamicCity's 11-class merge instead: class_merge='occ3d_nuscenes_to_dynamiccity',
# vocabulary='dynamiccity_nuscenes', num_classes=12, free_label=0.
# Faster windows: pack a cache (tools/dataset_converters/pack_window_cache.py) and set
# cache_dir on the dataset.
dataset_type = 'Occ3DNuScenesDataset'
data_root = 'data/nuscenes'
vocabulary = 'occ3d_nuscenes'
num_classes = 18
free_label = 17
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
        type=dataset_type, data_root=data_root,
        ann_file='nuscenes_infos_train_temporal_v3_scene.pkl', num_frames=num_frames,
        window_stride=1, class_merge=None, masks=(), command_source='auto',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='nuscenes_infos_val_temporal_v3_scene.pkl', num_frames=num_frames,
        window_stride=num_frames, class_merge=None, masks=('mask_camera', ),
        command_source='auto', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
