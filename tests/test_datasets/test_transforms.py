"""Transforms on hand-built windows: exact voxel moves and consistent conditions."""
import numpy as np
import pytest

from occworld4d.structures.geometry import (FORWARD, LEFT, RIGHT, STATIC,
                                            command_from_trajectory, trajectory_from_poses)
from occworld4d.datasets.transforms import (CropVoxels, MakeLayout, PackOccInputs, RandomFlip,
                                            RandomRotate90, RemapClasses, ResizeVoxels,
                                            TemporalSubsample)
from occworld4d.registry import TRANSFORMS


def turning_poses(num=4, step=1.0, yaw_step=0.1):
    poses = np.tile(np.eye(4), (num, 1, 1))
    x = y = yaw = 0.0
    for t in range(num):
        c, s = np.cos(yaw), np.sin(yaw)
        poses[t, :2, :2] = [[c, -s], [s, c]]
        poses[t, :2, 3] = [x, y]
        x, y, yaw = x + step * c, y + step * s, yaw + yaw_step
    return poses


def window(num=4, grid=(8, 8, 2)):
    sem = np.zeros((num,) + grid, np.uint8)
    sem[:, 1, 2, 0] = 10  # a vehicle ahead-left of the corner
    poses = turning_poses(num)
    traj = trajectory_from_poses(poses)
    return dict(semantics=sem, mask_camera=sem > 0, ego_poses=poses, trajectory=traj,
                command=command_from_trajectory(traj), layout=np.zeros((num, 4, 4), np.float32),
                vocabulary='dynamiccity_carlasc', frame_ids=[str(i) for i in range(num)],
                scene='s', voxel_size=[0.5, 0.5, 0.5], pc_range=[-2, -2, 0, 2, 2, 1])


def test_flip_y_mirrors_voxels_trajectory_poses_and_command():
    res = window()
    res['layout'][:, 0, 1] = 1
    assert res['command'] == LEFT
    out = RandomFlip(prob=1.0, axis='y')(res)
    assert out['semantics'][0, 1, 8 - 1 - 2, 0] == 10 and out['semantics'].sum() == 4 * 10
    assert out['mask_camera'][0, 1, 5, 0]
    assert out['layout'][0, 0, 4 - 1 - 1] == 1
    assert out['command'] == RIGHT
    ref = trajectory_from_poses(turning_poses())
    np.testing.assert_allclose(out['trajectory'][:, 0], ref[:, 0], atol=1e-6)
    np.testing.assert_allclose(out['trajectory'][:, 1:], -ref[:, 1:], atol=1e-6)
    np.testing.assert_allclose(trajectory_from_poses(out['ego_poses']), out['trajectory'],
                               atol=1e-5)
    assert command_from_trajectory(out['trajectory']) == RIGHT
    rots = out['ego_poses'][:, :3, :3]
    np.testing.assert_allclose(np.linalg.det(rots), 1, atol=1e-9)  # still proper rotations


def test_flip_x_and_probability_zero():
    out = RandomFlip(prob=1.0, axis='x')(window())
    assert out['semantics'][0, 8 - 1 - 1, 2, 0] == 10
    assert out['command'] == RIGHT
    np.testing.assert_allclose(trajectory_from_poses(out['ego_poses']), out['trajectory'],
                               atol=1e-5)
    same = RandomFlip(prob=0.0)(window())
    assert same['command'] == LEFT and same['semantics'][0, 1, 2, 0] == 10
    for cmd in (STATIC, FORWARD):
        res = window()
        res['command'] = cmd
        assert RandomFlip(prob=1.0)(res)['command'] == cmd


def test_rotate90_moves_voxels_and_rotates_trajectory():
    res = window()
    res['layout'][:, 0, 1] = 1
    out = RandomRotate90(ks=(1,))(res)
    # np.rot90 over (X, Y): old (a, b) -> new (X - 1 - b, a)
    assert out['semantics'][0, 8 - 1 - 2, 1, 0] == 10 and out['semantics'].sum() == 40
    assert out['layout'][0, 4 - 1 - 1, 0] == 1
    ref = trajectory_from_poses(turning_poses())
    np.testing.assert_allclose(out['trajectory'][:, 0], -ref[:, 1], atol=1e-6)
    np.testing.assert_allclose(out['trajectory'][:, 1], ref[:, 0], atol=1e-6)
    np.testing.assert_allclose(out['trajectory'][:, 2], ref[:, 2], atol=1e-6)
    np.testing.assert_allclose(trajectory_from_poses(out['ego_poses']), out['trajectory'],
                               atol=1e-5)
    assert out['command'] == LEFT
    four = window()
    for _ in range(4):
        four = RandomRotate90(ks=(1,))(four)
    np.testing.assert_array_equal(four['semantics'], window()['semantics'])
    np.testing.assert_allclose(four['trajectory'], window()['trajectory'], atol=1e-5)


def test_temporal_subsample_rebases_trajectory():
    res = window(num=7)
    out = TemporalSubsample(step=2, start=1, num_frames=3, recompute_command=True)(res)
    poses = turning_poses(7)[1::2]
    assert out['frame_ids'] == ['1', '3', '5']
    assert out['semantics'].shape[0] == 3 and out['layout'].shape[0] == 3
    np.testing.assert_allclose(out['trajectory'], trajectory_from_poses(poses), atol=1e-5)
    assert out['command'] == LEFT
    with pytest.raises(ValueError, match='cannot give 5 frames'):
        TemporalSubsample(step=2, num_frames=5)(window(num=7))


def test_crop_resize_layout_remap_exact():
    res = window()
    out = CropVoxels(size=(4, 4, 2))(dict(res))
    assert out['semantics'].shape == (4, 4, 4, 2)
    assert out['semantics'].sum() == 0  # voxel (1, 2) is outside the centred crop [2, 6)
    out = CropVoxels(size=(4, 4, 2), offset=(0, 0, 0))(window())
    assert out['semantics'][0, 1, 2, 0] == 10
    assert out['pc_range'] == [-2.0, -2.0, 0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match='does not fit'):
        CropVoxels(size=(9, 4, 2))(window())
    res = window()
    res['semantics'][:, 1, 3, 1] = 7
    small = ResizeVoxels(size=(4, 4, 1))(res)
    assert small['semantics'].shape == (4, 4, 4, 1)
    assert small['voxel_size'] == [1.0, 1.0, 1.0]
    # new voxel (i, j, k) takes the old voxel holding its centre: (2i + 1, 2j + 1, 1)
    assert small['semantics'][0, 0, 1, 0] == 7 and small['semantics'].sum() == 4 * 7
    lay = MakeLayout(classes=('vehicle',), pool=2)(window())['layout']
    assert lay.shape == (4, 4, 4) and lay[0, 0, 1] == 1 and lay.sum() == 4
    raw = window()
    raw['vocabulary'] = 'carlasc_raw'
    raw['semantics'][:, 0, 0, 0] = 17  # guardrail -> barrier
    out = RemapClasses('carlasc_to_dynamiccity')(raw)
    assert out['semantics'][0, 0, 0, 0] == 2 and out['semantics'][0, 1, 2, 0] == 10
    assert out['vocabulary'] == 'dynamiccity_carlasc' and out['free_label'] == 0
    raw = window()
    raw['vocabulary'] = 'carlasc_raw'
    raw['semantics'][0, 0, 0, 0] = 40
    with pytest.raises(ValueError, match=r'raw label\(s\) \[40\]'):
        RemapClasses('carlasc_to_dynamiccity')(raw)


def test_pack_contract_and_registry_build():
    packed = TRANSFORMS.build(dict(type='PackOccInputs'))(window())
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs['voxels'].dtype.__str__() == 'torch.uint8'
    assert inputs['voxels'].shape == (4, 8, 8, 2)
    assert inputs['trajectory'].dtype.__str__() == 'torch.float32'
    assert inputs['command'].dtype.__str__() == 'torch.int64' and inputs['command'].ndim == 0
    assert inputs['layout'].shape == (4, 4, 4)
    assert sample.gt_semantics is inputs['voxels']
    assert sample.metainfo['frame_ids'] == ['0', '1', '2', '3']
    with pytest.raises(ValueError, match='uint8'):
        PackOccInputs()(dict(semantics=np.zeros((2, 2, 2), np.uint8)))


def test_quaternion_round_trip_including_half_turns():
    """Rotations by ~180 degrees (w ~ 0) keep the relative signs of x, y, z."""
    from occworld4d.structures.geometry import quaternion_from_matrix, quaternion_to_matrix
    rng = np.random.default_rng(0)
    axes = [(1, 1, 0), (1, -1, 0), (0, 1, -1), (1, 1, 1), (0, 0, 1)]
    cases = [(0.0, *(np.asarray(a, float) / np.linalg.norm(a))) for a in axes]
    cases += [tuple(q) for q in rng.normal(size=(50, 4))]
    for q in cases:
        R = quaternion_to_matrix(q)
        out = quaternion_from_matrix(R)
        assert out[0] >= 0
        np.testing.assert_allclose(quaternion_to_matrix(out), R, atol=1e-12)


def test_crop_and_resize_carry_the_layout():
    res = window()  # 8 x 8 grid, vehicle voxel at (1, 2); layout pooled by 2
    lay = MakeLayout(classes=('vehicle',), pool=2)(dict(res))
    out = CropVoxels(size=(4, 4, 2), offset=(0, 0, 0))(dict(lay))
    ref = MakeLayout(classes=('vehicle',), pool=2)(CropVoxels(size=(4, 4, 2),
                                                              offset=(0, 0, 0))(window()))
    np.testing.assert_array_equal(out['layout'], ref['layout'])  # same as layout-after-crop
    assert out['layout'].shape == (4, 2, 2) and out['layout'][0, 0, 1] == 1
    small = ResizeVoxels(size=(4, 4, 2))(MakeLayout(classes=('vehicle',), pool=2)(window()))
    assert small['layout'].shape == (4, 2, 2)
    # a crop that splits layout cells cannot be mapped: clear error, not a silent mismatch
    with pytest.raises(ValueError, match='put MakeLayout after CropVoxels'):
        CropVoxels(size=(3, 4, 2), offset=(1, 0, 0))(dict(lay))
