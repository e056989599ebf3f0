"""Readers on the real samples in ../shared/data/real (skipped when absent)."""
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest

from occworld4d.datasets import DataFormatError, Occ3DNuScenesDataset, Occ3DWaymoDataset
from occworld4d.structures.geometry import (FORWARD, LEFT, RIGHT, command_from_vad_onehot,
                                            pose_matrix, trajectory_from_poses)
from occworld4d.datasets.waymo_records import (crc32c, masked_crc32c, read_tfrecord,
                                               read_v1_poses, read_v2_poses)
from occworld4d.structures import get_merge

TOKEN = '29796060110c4163b07f06eff4af0753'
INFOS = 'nuscenes/infos/nuscenes_mini_infos_val.pkl'
V1 = 'waymo/v1_frame/pvps_data_one_frame.tfrecord'
V2 = 'waymo/v2_vehicle_pose/10023947602400723454_1120_000_1140_000.parquet'


def test_occ3d_frame_through_dataset(real_root, tmp_path):
    info = dict(token=TOKEN, scene_name='scene-1077', timestamp=0,
                ego2global_rotation=[1, 0, 0, 0], ego2global_translation=[0, 0, 0])
    ann = tmp_path / 'infos.pkl'
    ann.write_bytes(pickle.dumps(dict(infos=[info], metadata={})))
    root = osp.join(real_root, 'occ3d_nuscenes')
    raw = np.load(osp.join(root, 'gts', 'scene-1077', TOKEN, 'labels.npz'))
    ds = Occ3DNuScenesDataset(root, str(ann), num_frames=1,
                              masks=('mask_lidar', 'mask_camera'))
    assert len(ds) == 1
    sample = ds[0]
    vox = sample['inputs']['voxels']
    assert vox.shape == (1, 200, 200, 16) and str(vox.dtype) == 'torch.uint8'
    np.testing.assert_array_equal(vox[0].numpy(), raw['semantics'])
    np.testing.assert_array_equal(sample['data_samples'].mask_camera[0].numpy(),
                                  raw['mask_camera'].astype(bool))
    assert sample['data_samples'].metainfo['frame_ids'] == [TOKEN]
    assert int(sample['inputs']['command']) == 0  # one frame: no motion -> STATIC
    merged = Occ3DNuScenesDataset(root, str(ann), num_frames=1,
                                  class_merge='occ3d_nuscenes_to_dynamiccity')[0]
    m = merged['inputs']['voxels'][0].numpy()
    sem = raw['semantics']
    # building <- manmade (15); vehicle (10) <- bus, car, construction_vehicle, trailer, truck
    assert (m == 1).sum() == (sem == 15).sum() > 0
    assert (m == 10).sum() == np.isin(sem, [3, 4, 5, 9, 10]).sum() > 0
    assert (m == 0).sum() == (sem == 17).sum()
    assert merged['data_samples'].metainfo['vocabulary'] == 'dynamiccity_nuscenes'
    _, _, lut = get_merge('occ3d_nuscenes_to_dynamiccity')
    np.testing.assert_array_equal(m, lut[sem])


def _lidar_offsets(ego_poses, info):
    """Lidar-origin displacement of frames 1.. in frame 0's lidar axes (VAD's convention)."""
    lidar = pose_matrix(info['lidar2ego_rotation'], info['lidar2ego_translation'])
    rel = np.linalg.inv(ego_poses[0])[None] @ ego_poses  # (T, 4, 4)
    pts = np.linalg.inv(lidar)[None] @ rel @ lidar[:, 3:4]  # (T, 4, 1)
    return pts[1:, :2, 0]


def test_81_frame_infos_windows_trajectories_commands(real_root):
    ann = osp.join(real_root, INFOS)
    infos = pickle.load(open(ann, 'rb'))['infos']
    scene_of = {i['token']: i['scene_token'] for i in infos}
    ds = Occ3DNuScenesDataset('/nonexistent', ann, num_frames=7, command_source='infos')
    assert list(ds.scenes) == ['scene-0103', 'scene-0916']
    assert [len(f) for f in ds.scenes.values()] == [40, 41]
    assert len(ds) == (40 - 6) + (41 - 6)
    by_token = {i['token']: i for i in infos}
    checked = 0
    for idx in range(len(ds)):
        frames = ds.window_frames(ds.get_data_info(idx))
        assert len({scene_of[f['frame_id']] for f in frames}) == 1  # never crosses scenes
        cond = ds.window_conditions(frames)
        first = by_token[frames[0]['frame_id']]
        np.testing.assert_allclose(cond['trajectory'][0], 0, atol=1e-6)
        assert cond['command'] == command_from_vad_onehot(first['gt_ego_fut_cmd'])
        if first['gt_ego_fut_masks'].all():
            # per-step VAD offsets (lidar axes) == displacements from our poses
            cum = np.cumsum(first['gt_ego_fut_trajs'], axis=0)  # (6, 2)
            np.testing.assert_allclose(_lidar_offsets(cond['ego_poses'], first), cum,
                                       atol=2e-3)
            lateral = cum[-1, 0]  # VAD: right if >= 2 m, left if <= -2 m
            expect = RIGHT if lateral >= 2 else LEFT if lateral <= -2 else FORWARD
            assert cond['command'] == expect
            checked += 1
    assert checked >= 60
    cmds = [ds.window_conditions(ds.window_frames(ds.get_data_info(i)))['command']
            for i in range(len(ds))]
    assert {RIGHT, LEFT, FORWARD} <= set(cmds)


def test_waymo_v1_tfrecord_crc_and_pose(real_root, tmp_path):
    assert crc32c(b'123456789') == 0xE3069283  # CRC-32C check value
    path = osp.join(real_root, V1)
    records = list(read_tfrecord(path))
    assert len(records) == 1 and len(records[0]) == 2168758
    # flip one payload byte: the payload CRC check names the file and both values
    bad = tmp_path / 'bad.tfrecord'
    shutil.copy(path, bad)
    with open(bad, 'r+b') as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DataFormatError, match=r'bad\.tfrecord.*payload CRC mismatch.*expected'):
        list(read_tfrecord(str(bad)))
    assert len(list(read_tfrecord(str(bad), verify=False))) == 1
    # corrupt the length's CRC
    with open(bad, 'r+b') as f:
        f.seek(8)
        f.write(b'\x00\x00\x00\x00')
    with pytest.raises(DataFormatError, match='length CRC mismatch'):
        list(read_tfrecord(str(bad)))
    # truncated file
    trunc = tmp_path / 'trunc.tfrecord'
    trunc.write_bytes(open(path, 'rb').read()[:5000])
    with pytest.raises(DataFormatError, match='truncated record'):
        list(read_tfrecord(str(trunc)))
    assert masked_crc32c(b'') == ((0 >> 15 | 0 << 17) + 0xA282EAD8) & 0xFFFFFFFF


def test_waymo_v1_frame_pose(real_root):
    pytest.importorskip('waymo_open_dataset.dataset_pb2',
                        reason='needs pip install --no-deps -r requirements/waymo.txt')
    poses, stamps = read_v1_poses(osp.join(real_root, V1))
    assert poses.shape == (1, 4, 4) and stamps.tolist() == [1553735853462203]
    np.testing.assert_allclose(poses[0, 0], [0.721910041, 0.691875364, 0.012424697,
                                             -25211.2589], rtol=1e-6)
    np.testing.assert_allclose(poses[0, 1], [-0.691948554, 0.721942710, 0.002433350,
                                             42391.0813], rtol=1e-6)
    np.testing.assert_allclose(poses[0, 3], [0, 0, 0, 1])
    rot = poses[0, :3, :3]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)
    assert abs(np.linalg.det(rot) - 1) < 1e-6


def test_waymo_v2_parquet_trajectory(real_root):
    pytest.importorskip('pyarrow.parquet', reason='needs pyarrow (requirements/tests.txt)')
    poses, stamps = read_v2_poses(osp.join(real_root, V2))
    assert poses.shape == (199, 4, 4)
    dt = np.diff(stamps) / 1e6
    assert np.all(dt > 0.09) and np.all(dt < 0.11)  # 10 Hz
    traj = trajectory_from_poses(poses)
    assert traj.shape == (199, 3)
    np.testing.assert_allclose(traj[0], 0, atol=1e-5)
    # frame-0 axes: step 1 equals inv(P0) @ P1 computed by hand
    rel = np.linalg.inv(poses[0]) @ poses[1]
    np.testing.assert_allclose(traj[1, :2], rel[:2, 3], atol=1e-4)
    # the vehicle's step length equals the world-frame step (rotation-invariant)
    world_step = np.linalg.norm(poses[1:, :2, 3] - poses[:-1, :2, 3], axis=1)
    ego_step = np.linalg.norm(np.diff(traj[:, :2], axis=0), axis=1)
    np.testing.assert_allclose(ego_step, world_step, atol=2e-3)
    assert 0 < world_step.sum() < 400  # 20 s of driving


def test_waymo_dataset_poses_from_parquet(real_root, tmp_path):
    pytest.importorskip('pyarrow.parquet', reason='needs pyarrow (requirements/tests.txt)')
    from occworld4d.datasets.writers import write_occ3d_waymo_frame
    grid = (200, 200, 16)
    lab = np.full(grid, 23, np.uint8)
    lab[0, 0, 0] = 1
    for t in range(20):
        write_occ3d_waymo_frame(str(tmp_path / 'training' / '000' / f'{t:03d}_04.npz'), lab,
                                np.ones(grid), np.ones(grid), np.ones(grid))
    v2 = osp.join(real_root, V2)
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=16, window_stride=4,
                           pose_source={'000': v2})
    poses, _ = read_v2_poses(v2)
    assert len(ds) == 2
    sample = ds[1]
    np.testing.assert_allclose(sample['inputs']['trajectory'].numpy(),
                               trajectory_from_poses(poses[4:20]), atol=1e-5)
    np.testing.assert_allclose(sample['data_samples'].ego_poses.numpy(), poses[4:20])


def test_mmdet3d_v11_info_pkl(real_root):
    path = osp.join(real_root, 'nuscenes', 'keyframe_scene-0061',
                    'n015-2018-07-24-11-22-45+0800.pkl')
    ds = Occ3DNuScenesDataset('/nonexistent', path, num_frames=1)
    (scene, frames), = ds.scenes.items()
    assert scene == 'n015-2018-07-24-11-22-45+0800' and len(frames) == 1
    assert frames[0]['frame_id'] == 'ca9a282c9e77460f8360f564131a8af5'
    np.testing.assert_allclose(frames[0]['pose'][:2, 3], [411.3039245605469, 1180.890380859375])


def test_waymo_dataset_poses_from_v1_record_folder(real_root, tmp_path):
    pytest.importorskip('waymo_open_dataset.dataset_pb2',
                        reason='needs pip install --no-deps -r requirements/waymo.txt')
    from occworld4d.datasets.writers import write_occ3d_waymo_frame
    grid = (200, 200, 16)
    write_occ3d_waymo_frame(str(tmp_path / 'data' / 'validation' / '000' / '000_04.npz'),
                            np.full(grid, 23), np.ones(grid), np.ones(grid), np.ones(grid))
    segments = tmp_path / 'segments'
    segments.mkdir()
    name = '1024360143612057520_3580_000_3600_000'  # the record's context.name
    shutil.copy(osp.join(real_root, V1), segments / f'segment-{name}_with_camera_labels.tfrecord')
    for pairing in (dict(scene_map={'000': name}), dict(pose_pairing='sorted_index')):
        ds = Occ3DWaymoDataset(str(tmp_path / 'data'), split='validation', num_frames=1,
                               pose_source=str(segments), **pairing)
        pose = ds[0]['data_samples'].ego_poses[0].numpy()
        np.testing.assert_allclose(pose[0, 3], -25211.2589, rtol=1e-6)
        np.testing.assert_allclose(pose, read_v1_poses(osp.join(real_root, V1))[0][0])
    with pytest.raises(DataFormatError, match="holds segment '1024360143612057520_3580_000_"):
        shutil.copy(osp.join(real_root, V1), segments / 'other.tfrecord')
        Occ3DWaymoDataset(str(tmp_path / 'data'), split='validation', num_frames=1,
                          pose_source=str(segments), scene_map={'000': 'other'})
