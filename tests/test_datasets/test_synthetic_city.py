"""Tests of the format writers and the synthetic 4D city."""
import json
import os.path as osp
import pickle

import numpy as np
import pytest

from occworld4d.datasets import writers as W


# ----------------------------------------------------------------------------- writers
def test_carlasc_writer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    T, X, Y, Z = 3, 6, 5, 4
    labels = rng.integers(0, 23, size=(T, X, Y, Z))
    counts = rng.integers(0, 3, size=(T, X, Y, Z)).astype(np.float32)
    poses = np.tile(np.eye(4), (T, 1, 1))
    poses[:, 0, 3] = [0.0, 1.5, 3.0]
    seq = tmp_path / 'Cartesian' / 'Train' / 'Town01_Light' / 'cartesian'
    W.write_carlasc_sequence(str(seq), labels, counts, poses)
    for t in range(T):
        flat = np.fromfile(seq / 'evaluation' / f'{t:06d}.label', dtype=np.uint32)
        assert flat.shape == (X * Y * Z,)
        # C order over (X, Y, Z): voxel (x, y, z) sits at x*Y*Z + y*Z + z
        assert flat[2 * Y * Z + 3 * Z + 1] == labels[t, 2, 3, 1]
        np.testing.assert_array_equal(flat.reshape(X, Y, Z), labels[t])
        np.testing.assert_array_equal(
            np.fromfile(seq / 'evaluation' / f'{t:06d}.bin', np.float32).reshape(X, Y, Z),
            counts[t])
        pts = np.fromfile(seq / 'velodyne' / f'{t:06d}.bin', np.float32).reshape(-1, 4)
        plab = np.fromfile(seq / 'labels' / f'{t:06d}.label', np.uint32)
        assert len(pts) == len(plab) > 0
        # every point falls in a voxel of its own label (CarlaSC voxelization rule)
        vsize = (np.array(W.CARLASC_MAX_BOUND) - W.CARLASC_MIN_BOUND) / (X, Y, Z)
        ijk = np.floor((pts[:, :3] - W.CARLASC_MIN_BOUND) / vsize).astype(int)
        np.testing.assert_array_equal(labels[t][ijk[:, 0], ijk[:, 1], ijk[:, 2]], plab)
        assert (counts[t][ijk[:, 0], ijk[:, 1], ijk[:, 2]] > 0).all()
    txt = np.loadtxt(seq / 'poses.txt')
    assert txt.shape == (T, 12)
    np.testing.assert_allclose(txt[:, 3], [0.0, 1.5, 3.0])
    np.testing.assert_allclose(np.loadtxt(seq / 'times.txt'), [0.0, 0.1, 0.2])
    params = json.loads((seq / 'evaluation' / 'params.json').read_text())
    assert params['grid_size'] == [6.0, 5.0, 4.0]
    assert params['num_channels'] == 23 and params['coordinates'] == 'cartesian'
    assert params['min_bound'] == [-25.6, -25.6, -2.0]
    assert not list(seq.rglob('*.tmp*'))  # atomic writes leave no temporary files


def test_carlasc_writer_rejects_bad_input(tmp_path):
    labels = np.zeros((2, 4, 4, 2), np.int64)
    with pytest.raises(ValueError, match='outside'):
        W.write_carlasc_sequence(str(tmp_path), labels + 23, labels, np.tile(np.eye(4), (2, 1, 1)))
    with pytest.raises(ValueError, match='poses'):
        W.write_carlasc_sequence(str(tmp_path), labels, labels, np.eye(4))
    with pytest.raises(ValueError, match='point_counts'):
        W.write_carlasc_sequence(str(tmp_path), labels, labels[:1], np.tile(np.eye(4), (2, 1, 1)))


def test_occ3d_nuscenes_writer_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    sem = rng.integers(0, 18, size=(8, 6, 4))
    ml, mc = rng.random((8, 6, 4)) > 0.5, rng.random((8, 6, 4)) > 0.3
    path = tmp_path / 'gts' / 'scene-0001' / 'tok' / 'labels.npz'
    W.write_occ3d_nuscenes_frame(str(path), sem, ml, mc)
    with np.load(path) as d:
        assert sorted(d.files) == ['mask_camera', 'mask_lidar', 'semantics']
        assert all(d[k].dtype == np.uint8 and d[k].shape == (8, 6, 4) for k in d.files)
        np.testing.assert_array_equal(d['semantics'], sem)
        np.testing.assert_array_equal(d['mask_lidar'], ml)
        np.testing.assert_array_equal(d['mask_camera'], mc)
    with pytest.raises(ValueError, match='semantics'):
        W.write_occ3d_nuscenes_frame(str(path), sem + 1, ml, mc)
    with pytest.raises(ValueError, match='mask_camera'):
        W.write_occ3d_nuscenes_frame(str(path), sem, ml, mc[:4])


def test_occ3d_nuscenes_writer_matches_real_frame(tmp_path, real_root):
    real = osp.join(real_root, 'occ3d_nuscenes', 'gts', 'scene-1077',
                    '29796060110c4163b07f06eff4af0753', 'labels.npz')
    with np.load(real) as d:
        ref = {k: d[k] for k in d.files}
    out = tmp_path / 'labels.npz'
    W.write_occ3d_nuscenes_frame(str(out), ref['semantics'], ref['mask_lidar'], ref['mask_camera'])
    with np.load(out) as d:
        assert sorted(d.files) == sorted(ref)
        for k in ref:
            assert d[k].dtype == ref[k].dtype and d[k].shape == ref[k].shape
            np.testing.assert_array_equal(d[k], ref[k])


@pytest.mark.parametrize('free', [15, 23])
def test_occ3d_waymo_writer_free_label(tmp_path, free):
    lab = np.full((4, 4, 2), 15, np.uint8)
    lab[0, 0, 0], lab[1, 1, 1] = 13, 1
    masks = np.ones((4, 4, 2), bool)
    pose = np.eye(4)
    pose[:3, 3] = [1, 2, 3]
    path = tmp_path / 'training' / '000' / '000_04.npz'
    W.write_occ3d_waymo_frame(str(path), lab, masks, masks, masks, ego2global=pose,
                              free_label=free)
    with np.load(path) as d:
        assert sorted(d.files) == ['ego2global', 'final_voxel_state', 'infov',
                                   'origin_voxel_state', 'voxel_label']
        assert d['voxel_label'].dtype == np.uint8
        assert (d['voxel_label'] == free).sum() == 30
        assert d['voxel_label'][0, 0, 0] == 13 and d['voxel_label'][1, 1, 1] == 1
        np.testing.assert_array_equal(d['ego2global'], pose)
    with pytest.raises(ValueError, match='free_label'):
        W.write_occ3d_waymo_frame(str(path), lab, masks, masks, masks, free_label=17)


def test_nuscenes_infos_reproduce_real_trajectories(tmp_path, real_root):
    """Rebuild the real file's ego futures / commands from its own poses."""
    with open(osp.join(real_root, 'nuscenes', 'infos', 'nuscenes_mini_infos_val.pkl'), 'rb') as f:
        real = pickle.load(f)['infos']
    scene = [r for r in real if r['scene_token'] == real[0]['scene_token']]
    poses = np.stack([r['global_from_ego'] for r in scene])
    ts = np.array([r['timestamp'] for r in scene])
    mine = W.build_nuscenes_infos('scene-0103', poses, ts)
    for m, r in zip(mine, scene):
        valid = r['gt_ego_fut_masks'] > 0
        np.testing.assert_array_equal(m['gt_ego_fut_masks'], r['gt_ego_fut_masks'])
        np.testing.assert_array_equal(m['gt_ego_fut_cmd'], r['gt_ego_fut_cmd'])
        # the real file uses the exact lidar calibration; ours is the rounded one (< 10 cm)
        np.testing.assert_allclose(m['gt_ego_fut_trajs'][valid], r['gt_ego_fut_trajs'][valid],
                                   atol=0.1)
        np.testing.assert_allclose(m['ego2global_translation'], r['ego2global_translation'])
        q, qr = np.array(m['ego2global_rotation']), np.array(r['ego2global_rotation'])
        assert min(np.abs(q - qr).max(), np.abs(q + qr).max()) < 1e-9  # same rotation
        for key in W.NUSCENES_INFO_KEYS:
            if key in r:
                assert type(m[key]) is type(r[key]) or np.shape(m[key]) == np.shape(r[key]), key
    assert mine[0]['prev'] == '' and mine[1]['prev'] == mine[0]['token']
    assert mine[0]['next'] == mine[1]['token'] and mine[-1]['next'] == ''
    path = tmp_path / 'infos.pkl'
    W.write_nuscenes_infos(str(path), mine, {'version': 'synthetic'})
    with open(path, 'rb') as f:
        back = pickle.load(f)
    assert set(back) == {'infos', 'metadata'} and len(back['infos']) == len(scene)
    assert back['infos'][3]['gt_ego_fut_trajs'].shape == (6, 2)
    bad = dict(mine[0])
    del bad['scene_token']
    with pytest.raises(KeyError, match='scene_token'):
        W.write_nuscenes_infos(str(path), [bad], {})
