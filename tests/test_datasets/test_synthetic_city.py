"""Tests of the format writers and the synthetic 4D city."""
import json
import os.path as osp
import pickle

import numpy as np
import pytest

from occworld4d.datasets import writers as W
from occworld4d.structures.geometry import quaternion_to_matrix


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
        # offsets of the lidar origin in lidar axes, as the real file; the real file uses the
        # exact lidar calibration, ours the rounded one: 1.3-1.7 cm per step (the ego origin
        # instead would be off by up to 0.25 m)
        np.testing.assert_allclose(m['gt_ego_fut_trajs'][valid], r['gt_ego_fut_trajs'][valid],
                                   atol=0.03)
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


# ----------------------------------------------------------------------------- synthetic city
from occworld4d.datasets import synthetic_city as SC  # noqa: E402

DYNAMIC = (SC.VEHICLE, SC.PEDESTRIAN)


def _gen(scenario, grid=(64, 64, 8), frames=8, seed=0, **kw):
    return SC.generate_sequence(frames, grid, 'carlasc', scenario, seed=seed, **kw)


def test_generation_is_deterministic_by_seed():
    a, b, c = _gen('left', seed=5), _gen('left', seed=5), _gen('left', seed=6)
    for key in ('semantics', 'ego_poses', 'point_counts', 'trajectory'):
        assert a[key].tobytes() == b[key].tobytes(), key
    assert a['semantics'].tobytes() != c['semantics'].tobytes()


def test_class_content_is_sensible():
    seen = set()
    for scenario in SC.SCENARIOS:
        sem = _gen(scenario, seed=1)['semantics']
        assert sem.dtype == np.uint8 and sem.shape == (8, 64, 64, 8)
        assert sem.max() < len(SC.CITY_CLASSES)
        seen |= set(np.unique(sem).tolist())
        # ground lives in the lowest layer (CarlaSC: road at z index 0); nothing is below it
        assert np.isin(sem[..., 0], [SC.ROAD, SC.ROADLINE, SC.SIDEWALK]).mean() > 0.2
    for cls in (SC.ROAD, SC.ROADLINE, SC.SIDEWALK, SC.TERRAIN, SC.BUILDING, SC.VEGETATION,
                SC.TRUNK, SC.POLE, SC.VEHICLE, SC.PEDESTRIAN):
        assert cls in seen, SC.CITY_CLASSES[cls]


def test_stopped_ego_sees_a_fixed_world_and_moving_agents():
    seq = _gen('stop', frames=6, seed=2)
    sem = seq['semantics']
    static = ~np.isin(sem, DYNAMIC)
    both = static[0] & static[-1]
    np.testing.assert_array_equal(sem[0][both], sem[-1][both])  # the world does not move
    veh = sem == SC.VEHICLE
    assert veh[0].any() and (veh[0] != veh[-1]).sum() > 10  # traffic does
    np.testing.assert_array_equal(seq['trajectory'], 0)
    assert seq['command'] == 0  # STATIC


def test_world_scrolls_under_the_ego():
    """Driving straight one voxel per frame shifts the static world by one voxel per frame."""
    seq = _gen('straight', frames=4, seed=3, ego_speed=8.0)  # 0.8 m / frame = 1 voxel at 64
    sem = seq['semantics']
    for t in range(1, 4):
        a, b = sem[t][:64 - t], sem[0][t:]  # frame t cell i == frame 0 cell i + t
        ok = ~np.isin(a, DYNAMIC) & ~np.isin(b, DYNAMIC)
        assert ok.mean() > 0.9
        np.testing.assert_array_equal(a[ok], b[ok])
    np.testing.assert_allclose(seq['trajectory'][:, 0], [0, 0.8, 1.6, 2.4], atol=1e-5)


@pytest.mark.parametrize('scenario,command', [('straight', 1), ('left', 2), ('right', 3),
                                              ('stop', 0)])
def test_ego_trajectories_and_commands(scenario, command):
    seq = _gen(scenario, grid=(32, 32, 8), frames=16, seed=4)
    traj = seq['trajectory']
    assert traj.dtype == np.float32 and traj.shape == (16, 3)
    np.testing.assert_array_equal(traj[0], 0)
    assert seq['command'] == command
    if scenario == 'straight':
        np.testing.assert_allclose(traj[:, 1:], 0, atol=1e-6)  # no lateral motion, yaw 0
        assert np.all(np.diff(traj[:, 0]) > 0.5)
    elif scenario == 'left':
        assert traj[-1, 2] > 0.5 and traj[-1, 1] > 1.0  # turned and moved to the left (+y)
        assert np.all(np.diff(traj[:, 2]) >= -1e-9)
    elif scenario == 'right':
        assert traj[-1, 2] < -0.5 and traj[-1, 1] < -1.0
    # poses are rigid transforms and reproduce the trajectory
    poses = seq['ego_poses']
    np.testing.assert_allclose(poses[:, :3, :3] @ poses[:, :3, :3].transpose(0, 2, 1),
                               np.tile(np.eye(3), (16, 1, 1)), atol=1e-12)


def test_nuscenes_preset_commands_at_2hz():
    seq = SC.generate_sequence(6, (50, 50, 16), 'occ3d_nuscenes', 'left', seed=0)
    assert seq['command'] == 2 and seq['semantics'].shape == (6, 50, 50, 16)
    # Occ3D-nuScenes: the road surface is in the lowest z layer
    assert (seq['semantics'][..., 0] == SC.ROAD).mean() > 0.05


def test_label_tables():
    lut = SC.city_label_lut('dynamiccity_carlasc')
    assert lut[SC.FREE] == 0 and lut[SC.ROAD] == 6 and lut[SC.ROADLINE] == 6
    assert lut[SC.VEHICLE] == 10 and lut[SC.TERRAIN] == 7 and lut[SC.TRUNK] == 9
    raw = SC.city_label_lut('carlasc_raw')
    assert raw[SC.ROAD] == 7 and raw[SC.ROADLINE] == 6 and raw[SC.SIGN] == 12
    nus = SC.city_label_lut('occ3d_nuscenes')
    assert nus[SC.FREE] == 17 and nus[SC.ROAD] == 11 and nus[SC.VEHICLE] == 4
    assert SC.city_label_lut('dynamiccity_nuscenes')[SC.POLE] == 1  # manmade -> building
    way = SC.city_label_lut('occ3d_waymo')
    assert way[SC.FREE] == 15 and way[SC.TRUNK] == 12 and way[SC.ROAD] == 13
    assert SC.city_label_lut('dynamiccity_waymo')[SC.SIGN] == 4  # SIGN -> pole
    with pytest.raises(KeyError, match='vocabulary'):
        SC.city_label_lut('kitti')


def test_visibility_masks():
    seq = _gen('straight', seed=1)
    vis, counts = seq['visible'], seq['point_counts']
    assert counts.dtype == np.float32
    np.testing.assert_array_equal(vis, counts > 0)
    assert vis[:, 31:33, 31:33, 0].all()  # next to the sensor
    assert 0.1 < vis.mean() < 0.95  # buildings occlude what lies behind them
    assert not vis[..., 1:][~vis[..., :1].repeat(7, -1)].any()  # columns are all-or-none


def test_visibility_occlusion_by_hand():
    """A wall 4 cells ahead of the sensor hides the columns behind it, not those beside."""
    sem = np.zeros((1, 32, 32, 4), np.uint8)
    sem[..., 0] = SC.ROAD
    sem[0, 20, 14:18, 1:] = SC.BUILDING  # wall across the x axis, y cells 14..17
    cx, cy, _, vs = SC._grid_axes((-16, -16, -1, 16, 16, 3), (32, 32, 4))
    gx, gy = np.meshgrid(cx, cy, indexing='ij')
    vis = SC._visibility(sem, 0, gx, gy, vs, np.random.default_rng(0))['visible'][0]
    assert vis[20, 15].all() and vis[18, 15].all()  # the wall face and the road before it
    assert not vis[24:, 15:17].any()  # straight behind the wall
    assert vis[24:, 2].all() and vis[5, 15].all()  # beside it, and behind the sensor


def test_generation_speed_16x128x128x8():
    import time
    t0 = time.perf_counter()
    seq = SC.generate_sequence(16, (128, 128, 8), 'carlasc', 'left', seed=0)
    dt = time.perf_counter() - t0
    print(f'\n16 x 128 x 128 x 8 synthetic sequence (with visibility): {dt:.3f} s')
    assert seq['semantics'].shape == (16, 128, 128, 8)
    assert dt < 4.0  # ~0.3 s measured on an idle core; generous for the shared CPU


def test_dataset_sample_contract():
    import torch
    from mmengine.dataset import default_collate

    from occworld4d.registry import DATASETS
    ds = DATASETS.build(dict(type='SyntheticCityDataset', num_scenes=4, num_frames=8,
                             grid_size=(32, 32, 8), seed=0, masks=('valid_mask',)))
    assert len(ds) == 4
    samples = [ds[i] for i in range(4)]
    s = samples[1]
    vox = s['inputs']['voxels']
    assert vox.dtype == torch.uint8 and vox.shape == (8, 32, 32, 8)
    assert int(vox.max()) < 12  # dynamiccity_carlasc ids
    assert s['inputs']['trajectory'].dtype == torch.float32
    assert s['inputs']['trajectory'].shape == (8, 3)
    assert s['inputs']['command'].dtype == torch.int64 and s['inputs']['command'].ndim == 0
    assert [int(x['inputs']['command']) for x in samples] == [1, 2, 3, 0]  # scenarios cycle
    ds_ = s['data_samples']
    assert torch.equal(ds_.gt_semantics, vox) and ds_.valid_mask.dtype == torch.bool
    assert ds_.ego_poses.shape == (8, 4, 4)
    meta = ds_.metainfo
    assert meta['vocabulary'] == 'dynamiccity_carlasc' and meta['free_label'] == 0
    assert meta['frame_ids'][0] == '000000' and len(meta['frame_ids']) == 8
    np.testing.assert_allclose(meta['voxel_size'], [1.6, 1.6, 0.375])
    batch = default_collate(samples[:2])
    assert batch['inputs']['voxels'].shape == (2, 8, 32, 32, 8)
    assert batch['inputs']['command'].shape == (2,)
    from occworld4d.models.data_preprocessors import OccDataPreprocessor
    data = OccDataPreprocessor(num_classes=12)(batch)
    assert data['inputs']['voxels'].dtype == torch.int64
    assert data['inputs']['voxels'].shape == (2, 8, 32, 32, 8)
    assert data['inputs']['trajectory'].shape == (2, 8, 3)
    assert len(data['data_samples']) == 2
    # same seed, same bytes; another seed, other scenes
    again = DATASETS.build(dict(type='SyntheticCityDataset', num_scenes=4, num_frames=8,
                                grid_size=(32, 32, 8), seed=0))
    assert torch.equal(again[1]['inputs']['voxels'], vox)
    other = DATASETS.build(dict(type='SyntheticCityDataset', num_scenes=4, num_frames=8,
                                grid_size=(32, 32, 8), seed=1))
    assert not torch.equal(other[1]['inputs']['voxels'], vox)


def test_dataset_vocabularies_and_pipeline():
    import torch
    nus = SC.SyntheticCityDataset(num_scenes=1, num_frames=2, grid_size=(32, 32, 8),
                                  preset='occ3d_nuscenes', masks=('mask_camera',))
    s = nus[0]
    assert s['data_samples'].metainfo['free_label'] == 17
    assert (s['inputs']['voxels'] == 17).float().mean() > 0.3
    assert s['data_samples'].mask_camera.shape == (2, 32, 32, 8)
    kw = dict(num_scenes=2, num_frames=3, grid_size=(32, 32, 8), masks=('valid_mask',))
    packed = SC.SyntheticCityDataset(**kw)[1]
    piped = SC.SyntheticCityDataset(pipeline=[dict(type='PackOccInputs')], **kw)[1]
    for key in ('voxels', 'trajectory', 'command'):
        assert torch.equal(packed['inputs'][key], piped['inputs'][key])
    assert torch.equal(packed['data_samples'].valid_mask, piped['data_samples'].valid_mask)
    with pytest.raises(ValueError, match='scenarios'):
        SC.SyntheticCityDataset(scenarios=('fly',))
    with pytest.raises(ValueError, match='masks'):
        SC.SyntheticCityDataset(masks=('mask_radar',))


# ----------------------------------------------------------------------------- converter
def _converter():
    import importlib.util
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_city', osp.join(root, 'tools', 'dataset_converters',
                                        'make_synthetic_city.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_converter_carlasc_tree_loads_with_the_reader(tmp_path):
    import torch
    from occworld4d.datasets import CarlaSCDataset
    tool = _converter()
    tool.main(['--format', 'carlasc', '--out', str(tmp_path), '--num-scenes', '2',
               '--num-frames', '5', '--grid', '32', '32', '8', '--seed', '3'])
    towns = sorted(p.name for p in (tmp_path / 'Cartesian' / 'Train').iterdir())
    assert towns == ['Town01_Light', 'Town01_Medium']
    seq_dir = tmp_path / 'Cartesian' / 'Train' / 'Town01_Medium' / 'cartesian'
    for sub in ('evaluation', 'velodyne', 'labels'):
        assert len(list((seq_dir / sub).glob('*.bin' if sub == 'velodyne' else '*.label'))) == 5
    ref = SC.generate_sequence(5, (32, 32, 8), 'carlasc', 'left', seed=tool.scene_seed(3, 1),
                               density=1.0)
    raw = np.fromfile(seq_dir / 'evaluation' / '000002.label', np.uint32).reshape(32, 32, 8)
    np.testing.assert_array_equal(raw, SC.city_label_lut('carlasc_raw')[ref['semantics'][2]])
    ds = CarlaSCDataset(data_root=str(tmp_path), split='Train', num_frames=5,
                        towns=['Town01_Medium'])
    s = ds[0]
    lut = SC.city_label_lut('dynamiccity_carlasc')
    assert torch.equal(s['inputs']['voxels'], torch.from_numpy(lut[ref['semantics']]))
    np.testing.assert_allclose(s['inputs']['trajectory'].numpy(), ref['trajectory'], atol=1e-5)
    assert int(s['inputs']['command']) == 2  # LEFT, from poses.txt
    assert torch.equal(s['data_samples'].valid_mask, torch.from_numpy(ref['point_counts'] > 0))


def test_converter_occ3d_nuscenes_tree_loads_with_the_reader(tmp_path):
    import torch
    from occworld4d.datasets import Occ3DNuScenesDataset
    tool = _converter()
    pkl = tool.make_occ3d_nuscenes(str(tmp_path), num_scenes=2, num_frames=3, seed=0)
    with open(pkl, 'rb') as f:
        data = pickle.load(f)
    assert len(data['infos']) == 6 and data['infos'][3]['prev'] == ''
    ann = json.loads((tmp_path / 'annotations.json').read_text())
    assert ann['train_split'] == ['scene-0000', 'scene-0001'] and ann['val_split'] == []
    frames = ann['scene_infos']['scene-0001']
    first = frames[data['infos'][3]['token']]
    assert first['prev'] == 'EOF' and first['next'] == data['infos'][4]['token']
    assert (tmp_path / first['gt_path']).is_file()
    assert first['ego_pose']['rotation'] == data['infos'][3]['ego2global_rotation']
    boxes = data['infos'][0]['gt_boxes']
    assert boxes.ndim == 2 and boxes.shape[1] == 7 and len(boxes) > 0
    assert set(data['infos'][0]['gt_names']) <= {'car', 'truck', 'pedestrian'}
    # every car box centre (lidar frame) lands on a car voxel of its frame's labels.npz
    lidar2ego = np.eye(4)
    lidar2ego[:3, :3] = quaternion_to_matrix(data['infos'][0]['lidar2ego_rotation'])
    lidar2ego[:3, 3] = data['infos'][0]['lidar2ego_translation']
    checked = 0
    for info in data['infos']:
        with np.load(tmp_path / 'gts' / info['occ_path'].split('/')[-2] / info['token'] /
                     'labels.npz') as d:
            sem = d['semantics']
        for box, name in zip(info['gt_boxes'], info['gt_names']):
            x, y, z = (lidar2ego @ np.append(box[:3], 1))[:3]
            i, j, k = int((x + 40) / 0.4), int((y + 40) / 0.4), int((z + 1) / 0.4)
            if name == 'car' and 5 <= i < 195 and 5 <= j < 195:
                assert sem[i, j, k] == 4, (info['token'], box)
                # orientation: mmdet3d v0.x yaw = -yaw_lidar - pi/2, lidar = ego turned -90 deg
                heading = -box[6] - np.pi  # ego-frame heading (up to the car's symmetry)
                along = np.array([np.cos(heading), np.sin(heading)])
                perp = np.array([-along[1], along[0]])
                for off, is_car in ((along * (box[4] / 2 - 0.6), True),
                                    (perp * (box[3] / 2 + 0.9), False)):
                    for sgn in (1, -1):
                        u, v = np.array([x, y]) + sgn * off
                        assert (sem[int((u + 40) / 0.4), int((v + 40) / 0.4), k] == 4) == is_car
                checked += 1
    assert checked > 5
    ds = Occ3DNuScenesDataset(data_root=str(tmp_path), ann_file=pkl, num_frames=3,
                              masks=('mask_lidar', 'mask_camera'))
    assert len(ds) == 2
    ref = SC.generate_sequence(3, (200, 200, 16), 'occ3d_nuscenes', 'left',
                               seed=tool.scene_seed(0, 1))
    s = ds[1]
    lut = SC.city_label_lut('occ3d_nuscenes')
    assert torch.equal(s['inputs']['voxels'], torch.from_numpy(lut[ref['semantics']]))
    assert torch.equal(s['data_samples'].mask_lidar, torch.from_numpy(ref['visible']))
    np.testing.assert_allclose(s['inputs']['trajectory'].numpy(), ref['trajectory'], atol=1e-4)


@pytest.mark.parametrize('free', [15, 23])
def test_converter_occ3d_waymo_tree_loads_with_the_reader(tmp_path, free):
    import torch
    from occworld4d.datasets import Occ3DWaymoDataset
    tool = _converter()
    tool.main(['--format', 'occ3d_waymo', '--out', str(tmp_path), '--num-scenes', '1',
               '--num-frames', '3', '--seed', '1', '--waymo-free', str(free)])
    files = sorted(p.name for p in (tmp_path / 'training' / '000').iterdir())
    assert files == ['000_04.npz', '001_04.npz', '002_04.npz']
    with np.load(tmp_path / 'training' / '000' / '001_04.npz') as d:
        assert d['voxel_label'].shape == (200, 200, 16) and (d['voxel_label'] == free).any()
        assert d['ego2global'].shape == (4, 4)
    ds = Occ3DWaymoDataset(data_root=str(tmp_path), split='training', num_frames=3,
                           class_merge=None, masks=('mask_lidar', 'mask_infov'))
    ref = SC.generate_sequence(3, (200, 200, 16), 'occ3d_waymo', 'straight',
                               seed=tool.scene_seed(1, 0), density=0.5)
    s = ds[0]
    lut = SC.city_label_lut('occ3d_waymo')
    assert torch.equal(s['inputs']['voxels'], torch.from_numpy(lut[ref['semantics']]))
    assert int(s['inputs']['command']) == 1


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize('name,grid,frames', [('synthetic_city_tiny', (32, 32, 8), 8),
                                              ('synthetic_city', (128, 128, 8), 16)])
def test_dataset_configs_build(name, grid, frames):
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    from occworld4d.registry import DATASETS
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs', '_base_', 'datasets', f'{name}.py'))
    assert cfg.num_classes == 12 and cfg.vocabulary == 'dynamiccity_carlasc'
    for split in ('train', 'val', 'test'):
        dl = cfg[f'{split}_dataloader']
        assert dl.collate_fn.type == 'default_collate'
        ds = DATASETS.build(dl.dataset)
        assert ds.metainfo['free_label'] == cfg.free_label
    if name == 'synthetic_city_tiny':  # the whole loader, through mmengine's builder
        from mmengine.registry import DefaultScope
        with DefaultScope.overwrite_default_scope('occworld4d'):
            loader = Runner.build_dataloader(cfg.train_dataloader.copy(), seed=0)
        batch = next(iter(loader))
        assert batch['inputs']['voxels'].shape == (2, frames) + grid
        assert batch['inputs']['voxels'].dtype == torch.uint8
        assert len(batch['data_samples']) == 2
        assert int(batch['inputs']['voxels'].max()) < cfg.num_classes


def test_dataset_frame_rate():
    """frame_rate=2 spaces frames 0.5 s apart (OccWorld's keyframes) on the CarlaSC grid: the
    same ego path as the 10 Hz default sampled at every 5th frame; the default is the preset's."""
    import torch
    kw = dict(num_scenes=1, grid_size=(32, 32, 8), seed=3)  # scene 0: 'straight'
    fast = SC.SyntheticCityDataset(num_frames=11, **kw)
    assert fast.frame_rate == 10.0
    explicit = SC.SyntheticCityDataset(num_frames=11, frame_rate=10.0, **kw)
    assert torch.equal(fast[0]['inputs']['voxels'], explicit[0]['inputs']['voxels'])
    slow = SC.SyntheticCityDataset(num_frames=3, frame_rate=2.0, **kw)
    tf, ts = fast[0]['inputs']['trajectory'], slow[0]['inputs']['trajectory']
    assert ts.shape == (3, 3)
    assert float(ts[1, 0]) > 2.5  # 6..10 m/s for 0.5 s
    torch.testing.assert_close(ts[:2], tf[::5][:2])  # frames 0, 1 at 2 Hz = frames 0, 5 at 10 Hz
    with pytest.raises(ValueError, match='frame_rate'):
        SC.SyntheticCityDataset(num_frames=3, frame_rate=0.0, **kw)
