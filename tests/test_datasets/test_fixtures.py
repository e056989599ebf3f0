"""Format-exact fixtures of the three datasets through their readers."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate

from occworld4d.datasets import CarlaSCDataset, Occ3DNuScenesDataset, Occ3DWaymoDataset
from occworld4d.structures.geometry import FORWARD, LEFT, RIGHT, STATIC, trajectory_from_poses
from occworld4d.datasets.writers import (build_nuscenes_infos, write_carlasc_sequence,
                                         write_nuscenes_infos, write_occ3d_nuscenes_frame,
                                         write_occ3d_waymo_frame)
from occworld4d.models.data_preprocessors import OccDataPreprocessor

CARLA_GRID = (128, 128, 8)


def yaw_poses(num, step=0.5, yaw_step=0.0):
    """Poses driving ``step`` m per frame along the heading, turning ``yaw_step`` rad a frame."""
    poses = np.tile(np.eye(4), (num, 1, 1))
    x = y = yaw = 0.0
    for t in range(num):
        c, s = np.cos(yaw), np.sin(yaw)
        poses[t, :2, :2] = [[c, -s], [s, c]]
        poses[t, :2, 3] = [x, y]
        x, y, yaw = x + step * c, y + step * s, yaw + yaw_step
    return poses


def write_town(root, town, poses, labels=None, counts=None):
    num = len(poses)
    if labels is None:
        labels = np.zeros((num,) + CARLA_GRID, np.uint32)
    if counts is None:
        counts = np.ones((num,) + CARLA_GRID, np.float32)
    seq = osp.join(root, 'Cartesian', 'Train', town, 'cartesian')
    write_carlasc_sequence(seq, labels, counts, poses, write_points=False)
    return seq


def test_carlasc_voxel_order_masks_remap_and_layout(tmp_path):
    num = 3
    labels = np.zeros((num,) + CARLA_GRID, np.uint32)
    labels[:, 5, 6, 7] = 17   # guardrail -> barrier (2)
    labels[:, 9, 1, 2] = 10   # vehicles -> vehicle (10)
    counts = np.zeros((num,) + CARLA_GRID, np.float32)
    counts[:, 5, 6, 7] = 3
    seq = write_town(str(tmp_path), 'Town01_Heavy', yaw_poses(num), labels, counts)
    # the reader's (X, Y, Z) order is C order, Z fastest: check against raw bytes
    flat = np.fromfile(osp.join(seq, 'evaluation', '000000.label'), np.uint32)
    assert flat[(5 * 128 + 6) * 8 + 7] == 17
    raw = CarlaSCDataset(str(tmp_path), num_frames=num, class_merge=None)[0]
    assert raw['inputs']['voxels'][0, 5, 6, 7] == 17
    ds = CarlaSCDataset(str(tmp_path), num_frames=num, pipeline=[dict(type='MakeLayout')])
    s = ds[0]
    vox = s['inputs']['voxels']
    assert vox.shape == (num,) + CARLA_GRID
    assert vox[0, 5, 6, 7] == 2 and vox[0, 9, 1, 2] == 10 and vox[0, 0, 0, 0] == 0
    assert int(vox.sum()) == num * 12
    valid = s['data_samples'].valid_mask
    assert valid.dtype == torch.bool and int(valid.sum()) == num and valid[0, 5, 6, 7]
    layout = s['inputs']['layout']
    assert layout.shape == (num, 32, 32)
    assert layout[0, 2, 0] == 1 and float(layout.sum()) == num  # (9, 1) // 4 = (2, 0)
    assert s['data_samples'].metainfo['vocabulary'] == 'dynamiccity_carlasc'


@pytest.mark.parametrize('yaw_step,step,expect', [
    (0.01, 0.5, LEFT), (-0.01, 0.5, RIGHT), (0.0, 0.5, FORWARD), (0.0, 0.0, STATIC),
    (0.002, 0.0, STATIC)])
def test_carlasc_trajectory_and_command(tmp_path, yaw_step, step, expect):
    poses = yaw_poses(4, step, yaw_step)
    poses[:, :3, 3] += [100.0, -50.0, 2.0]  # a world offset must not matter
    write_town(str(tmp_path), 'Town02_Light', poses)
    s = CarlaSCDataset(str(tmp_path), num_frames=4, masks=())[0]
    assert int(s['inputs']['command']) == expect
    traj = s['inputs']['trajectory'].numpy()
    assert traj[1, 0] == pytest.approx(step, abs=1e-5)
    assert traj[3, 2] == pytest.approx(3 * yaw_step, abs=1e-6)


def test_carlasc_windows_never_cross_towns(tmp_path):
    write_town(str(tmp_path), 'Town01_Heavy', yaw_poses(5))
    write_town(str(tmp_path), 'Town02_Light', yaw_poses(3))
    ds = CarlaSCDataset(str(tmp_path), num_frames=3, masks=())
    assert len(ds) == 3 + 1
    scenes = [ds.get_data_info(i)['scene'] for i in range(len(ds))]
    assert scenes == ['Train/Town01_Heavy'] * 3 + ['Train/Town02_Light']
    assert ds[3]['data_samples'].metainfo['frame_ids'] == ['000000', '000001', '000002']
    assert len(CarlaSCDataset(str(tmp_path), num_frames=3, window_stride=2, masks=())) == 2 + 1
    assert len(CarlaSCDataset(str(tmp_path), num_frames=3, frame_step=2, masks=())) == 1
    assert len(CarlaSCDataset(str(tmp_path), num_frames=3, towns=['Town02_Light'])) == 1


def test_occ3d_waymo_free_labels_masks_and_merge(tmp_path):
    grid = (200, 200, 16)
    lab = np.full(grid, 23, np.uint8)
    lab[1, 2, 3] = 1     # VEHICLE -> vehicle (8)
    lab[4, 5, 6] = 12    # TREE_TRUNK -> vegetation (7)
    infov = np.zeros(grid, bool)
    infov[:100] = True
    poses = yaw_poses(4, 1.0, 0.02)
    for t in range(4):
        write_occ3d_waymo_frame(str(tmp_path / 'training' / '007' / f'{t:03d}_04.npz'), lab,
                                np.ones(grid), np.ones(grid), infov, ego2global=poses[t])
        # a 0.1 m file beside it must be ignored at 0.4 m
        (tmp_path / 'training' / '007' / f'{t:03d}.npz').write_bytes(b'not read')
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=4, masks=['mask_infov'])
    s = ds[0]
    vox = s['inputs']['voxels']
    assert vox[0, 1, 2, 3] == 8 and vox[0, 4, 5, 6] == 7 and int((vox != 0).sum()) == 8
    assert int(s['data_samples'].mask_infov.sum()) == 4 * 100 * 200 * 16
    # 3.4 degrees over 3 m: FORWARD by the real-pose rule, LEFT by DynamicCity's per-step one
    assert int(s['inputs']['command']) == FORWARD
    assert int(Occ3DWaymoDataset(str(tmp_path), num_frames=4, command_rule='dynamiccity')[0][
        'inputs']['command']) == LEFT
    np.testing.assert_allclose(s['inputs']['trajectory'].numpy(), trajectory_from_poses(poses),
                               atol=1e-6)
    raw = Occ3DWaymoDataset(str(tmp_path), num_frames=4, class_merge=None)[0]
    assert int((raw['inputs']['voxels'] == 15).sum()) == 4 * (200 * 200 * 16 - 2)
    with pytest.raises(ValueError, match=r'000_04\.npz.*\[23\].*free_label=15'):
        Occ3DWaymoDataset(str(tmp_path), num_frames=4, free_label=15)[0]


def test_nuscenes_fixture_both_info_layouts_and_collation(tmp_path):
    # 0.2 rad a frame: 34 degrees in a window, a turn for the heading / lateral rule
    poses = yaw_poses(6, 2.0, 0.2)
    infos = build_nuscenes_infos('scene-0001', poses, np.arange(6) * 500000)
    grid = (200, 200, 16)
    for t, info in enumerate(infos):
        sem = np.full(grid, 17, np.uint8)
        sem[t, 0, 0] = 4
        write_occ3d_nuscenes_frame(str(tmp_path / 'gts' / 'scene-0001' / info['token'] /
                                       'labels.npz'), sem, np.ones(grid), np.zeros(grid))
    flat = tmp_path / 'flat.pkl'
    write_nuscenes_infos(str(flat), infos, dict(version='v1.0-test'))
    scene_dict = tmp_path / 'scenes.pkl'  # OccWorld's layout: infos[scene] -> list
    scene_dict.write_bytes(pickle.dumps(dict(infos={'scene-0001': infos}, metadata={})))
    for ann in (flat, scene_dict):
        ds = Occ3DNuScenesDataset(str(tmp_path), str(ann), num_frames=4, masks=['mask_camera'],
                                  command_source='poses')
        assert len(ds) == 3
        s = ds[2]
        vox = s['inputs']['voxels']
        assert [int(vox[i, 2 + i, 0, 0]) for i in range(4)] == [4] * 4
        assert not s['data_samples'].mask_camera.any()
        assert int(s['inputs']['command']) == LEFT
    batch = default_collate([ds[0], ds[1]])
    out = OccDataPreprocessor(num_classes=18)(batch)
    assert out['inputs']['voxels'].dtype == torch.int64
    assert out['inputs']['voxels'].shape == (2, 4, 200, 200, 16)
    assert out['inputs']['trajectory'].shape == (2, 4, 3)
    assert out['inputs']['command'].shape == (2,)
    assert len(out['data_samples']) == 2


def test_carlasc_world_trajectory_matches_dynamiccity_convention(tmp_path):
    poses = yaw_poses(4, 1.0, 0.1)
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # the world turned by 90 deg
    poses[:, :2, :] = np.einsum('ij,tjk->tik', rot, poses[:, :2, :])
    poses[:, :2, 3] += [5.0, 7.0]
    write_town(str(tmp_path), 'Town05_Medium', poses)
    world = CarlaSCDataset(str(tmp_path), num_frames=4, masks=(), trajectory_frame='world')[0]
    ego = CarlaSCDataset(str(tmp_path), num_frames=4, masks=())[0]
    w, e = world['inputs']['trajectory'].numpy(), ego['inputs']['trajectory'].numpy()
    # DynamicCity: (tx - tx0, ty - ty0, atan2(R10, R00)) in world axes
    np.testing.assert_allclose(w[:, :2], poses[:, :2, 3] - poses[0, :2, 3], atol=1e-5)
    np.testing.assert_allclose(w[:, 2], np.pi / 2 + 0.1 * np.arange(4), atol=1e-5)
    np.testing.assert_allclose(e[1], [1.0, 0.0, 0.1], atol=1e-5)  # frame-0 ego axes
    assert int(world['inputs']['command']) == int(ego['inputs']['command']) == LEFT
