"""create_nuscenes_occ_infos on a minimal hand-written set of nuScenes JSON tables.

nuscenes-devkit itself is not installed in the test environment (it pins numpy < 2). Both
backends end in the tool's NuScenesTables; the devkit backend is exercised through a
duck-typed stand-in of ``nuscenes.nuscenes.NuScenes`` (loads the tables and adds the reverse
indices the devkit adds), installed in ``sys.modules``."""
import importlib.util
import json
import os
import os.path as osp
import pickle
import sys
import types

import numpy as np
import pytest

from occworld4d.datasets import Occ3DNuScenesDataset
from occworld4d.structures.geometry import (RIGHT, pose_matrix, vad_command_onehot,
                                            vad_ego_trajectories)
from occworld4d.datasets.writers import (NUSCENES_LIDAR2EGO_ROTATION,
                                         NUSCENES_LIDAR2EGO_TRANSLATION, build_nuscenes_infos)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LIDAR_ROT = [np.cos(np.pi / 4), 0.0, 0.0, -np.sin(np.pi / 4)]  # -90 deg about z: x right, y fwd
LIDAR_T = [1.0, 0.0, 1.8]


def _tool():
    path = osp.join(ROOT, 'tools', 'dataset_converters', 'create_nuscenes_occ_infos.py')
    spec = importlib.util.spec_from_file_location('create_nuscenes_occ_infos', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _quat_z(yaw):
    return [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]


def write_tables(root, num=8, yaw_rate=0.0, step=2.0, lidar_t=LIDAR_T, lidar_rot=LIDAR_ROT):
    """One scene of ``num`` keyframes (2 Hz) with a LIDAR_TOP and one car track.

    Returns:
        (num, 4, 4) world-from-ego poses of the keyframes.
    """
    tok = lambda kind, i: f'{kind}{i:028d}'  # noqa: E731  32-char tokens
    samples, sds, poses, anns, mats = [], [], [], [], []
    x = y = yaw = 0.0
    for i in range(num):
        mats.append(pose_matrix(_quat_z(yaw), [x, y, 0.0]))
        ts = 1_000_000 + i * 500_000
        samples.append(dict(token=tok('samp', i), timestamp=ts, scene_token=tok('scen', 0),
                            prev=tok('samp', i - 1) if i else '',
                            next=tok('samp', i + 1) if i + 1 < num else ''))
        poses.append(dict(token=tok('pose', i), timestamp=ts, translation=[x, y, 0.0],
                          rotation=_quat_z(yaw)))
        sds.append(dict(token=tok('sdat', i), sample_token=tok('samp', i),
                        ego_pose_token=tok('pose', i),
                        calibrated_sensor_token=tok('cals', 0), timestamp=ts, fileformat='pcd',
                        is_key_frame=True, height=0, width=0,
                        filename=f'samples/LIDAR_TOP/frame{i}.pcd.bin',
                        prev=tok('sdat', i - 1) if i else '',
                        next=tok('sdat', i + 1) if i + 1 < num else ''))
        anns.append(dict(token=tok('anno', i), sample_token=tok('samp', i),
                         instance_token=tok('inst', 0), visibility_token='4',
                         attribute_tokens=[], translation=[11.0 + 2.5 * i, 0.0, 1.8],
                         size=[1.9, 4.5, 1.6], rotation=[1.0, 0.0, 0.0, 0.0],
                         prev=tok('anno', i - 1) if i else '',
                         next=tok('anno', i + 1) if i + 1 < num else '',
                         num_lidar_pts=10, num_radar_pts=0))
        x, y, yaw = x + step * np.cos(yaw), y + step * np.sin(yaw), yaw + yaw_rate
    tables = dict(
        scene=[dict(token=tok('scen', 0), name='scene-0042', description='',
                    log_token=tok('log_', 0),
                    nbr_samples=num, first_sample_token=tok('samp', 0),
                    last_sample_token=tok('samp', num - 1))],
        sample=samples, sample_data=sds, ego_pose=poses,
        calibrated_sensor=[dict(token=tok('cals', 0), sensor_token=tok('sens', 0),
                                translation=list(lidar_t), rotation=list(lidar_rot),
                                camera_intrinsic=[])],
        sensor=[dict(token=tok('sens', 0), channel='LIDAR_TOP', modality='lidar')],
        sample_annotation=anns,
        instance=[dict(token=tok('inst', 0), category_token=tok('cate', 0), nbr_annotations=num,
                       first_annotation_token=tok('anno', 0),
                       last_annotation_token=tok('anno', num - 1))],
        category=[dict(token=tok('cate', 0), name='vehicle.car', description='')],
        log=[dict(token=tok('log_', 0), logfile='', vehicle='', date_captured='',
                  location='boston-seaport')],
        attribute=[], visibility=[dict(token='4', level='v80-100', description='')],
        map=[dict(token=tok('map_', 0), log_tokens=[tok('log_', 0)], category='',
                  filename='')])
    folder = osp.join(root, 'v1.0-mini')
    os.makedirs(folder, exist_ok=True)
    for name, records in tables.items():
        with open(osp.join(folder, f'{name}.json'), 'w') as f:
            json.dump(records, f)
    return np.stack(mats)


def test_straight_scene_exact_values(tmp_path):
    tool = _tool()
    write_tables(str(tmp_path))
    nusc = tool.NuScenesTables.from_json('v1.0-mini', str(tmp_path))
    infos = tool.create_infos(nusc, progress=False)['scene-0042']
    assert len(infos) == 8 and [f['frame_idx'] for f in infos] == list(range(8))
    f0 = infos[0]
    # ego drives 2 m a frame along its x: in LiDAR axes (x right, y forward) that is (0, 2)
    np.testing.assert_allclose(f0['gt_ego_fut_trajs'], [[0, 2]] * 6, atol=1e-6)
    np.testing.assert_array_equal(f0['gt_ego_fut_masks'], np.ones(6))
    np.testing.assert_array_equal(f0['gt_ego_fut_cmd'], [0, 0, 1])  # straight
    # no history at the scene start: the earliest step is copied (as in the real infos)
    np.testing.assert_allclose(f0['gt_ego_his_trajs'], [[0, 2], [0, 2]], atol=1e-6)
    np.testing.assert_allclose(infos[3]['gt_ego_his_trajs'], [[0, 2], [0, 2]], atol=1e-6)
    np.testing.assert_array_equal(infos[5]['gt_ego_fut_masks'], [1, 1, 0, 0, 0, 0])
    # the car 11 m ahead in the world, LiDAR 1 m ahead of the ego origin: 10 m forward
    np.testing.assert_allclose(f0['gt_boxes'][0, :3], [0, 10, 0], atol=1e-6)
    np.testing.assert_allclose(f0['gt_boxes'][0, 3:6], [1.9, 4.5, 1.6])
    assert f0['gt_boxes'][0, 6] == pytest.approx(-np.pi, abs=1e-6)  # -yaw - pi/2, yaw = pi/2
    np.testing.assert_allclose(f0['gt_velocity'][0], [0, 5], atol=1e-6)  # 2.5 m / 0.5 s
    assert f0['gt_names'].tolist() == ['car'] and f0['valid_flag'].tolist() == [True]
    assert f0['occ_path'] == './data/nuscenes/gts/scene-0042/' + f0['token']
    assert f0['prev'] == '' and f0['next'] == infos[1]['token']


def test_right_turn_command_and_dataset_reads_output(tmp_path):
    tool = _tool()
    write_tables(str(tmp_path / 'nus'), num=10, yaw_rate=-0.15)
    for flat in (False, True):
        out = str(tmp_path / f'infos_{flat}.pkl')
        tool.main(['--dataroot', str(tmp_path / 'nus'), '--version', 'v1.0-mini',
                   '--out', out] + (['--flat'] if flat else []))
        data = pickle.load(open(out, 'rb'))
        infos = data['infos'] if flat else data['infos']['scene-0042']
        assert isinstance(data['infos'], list if flat else dict)
        f0 = infos[0]
        lateral = f0['gt_ego_fut_trajs'][:, 0].sum()
        assert lateral >= 2  # turning right drifts to LiDAR +x
        np.testing.assert_array_equal(f0['gt_ego_fut_cmd'], [1, 0, 0])
        ds = Occ3DNuScenesDataset(str(tmp_path), out, num_frames=4)
        assert list(ds.scenes) == ['scene-0042'] and len(ds) == 7
        cond = ds.window_conditions(ds.window_frames(ds.get_data_info(0)))
        assert cond['command'] == RIGHT
        assert cond['trajectory'][1, 0] == pytest.approx(2.0, abs=1e-5)
        assert cond['trajectory'][3, 2] == pytest.approx(-0.45, abs=1e-5)


def test_missing_table_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'v1\.0-mini/scene\.json: nuScenes table'):
        _tool().NuScenesTables.from_json('v1.0-mini', str(tmp_path))


def test_ego_trajectories_reproduce_the_real_info_file(real_root):
    """On the real 81-frame file: the shared per-step offsets, history and commands match."""
    infos = pickle.load(open(osp.join(real_root, 'nuscenes', 'infos',
                                      'nuscenes_mini_infos_val.pkl'), 'rb'))['infos']
    checked = 0
    for scene in sorted({f['scene_token'] for f in infos}):
        frames = sorted((f for f in infos if f['scene_token'] == scene),
                        key=lambda f: f['timestamp'])
        lidar = np.stack([pose_matrix(f['ego2global_rotation'], f['ego2global_translation']) @
                          pose_matrix(f['lidar2ego_rotation'], f['lidar2ego_translation'])
                          for f in frames])  # (T, 4, 4) global-from-lidar
        for i, f in enumerate(frames):
            fut, mask, his = vad_ego_trajectories(lidar, i)
            np.testing.assert_array_equal(mask, f['gt_ego_fut_masks'])
            np.testing.assert_allclose(fut, f['gt_ego_fut_trajs'], atol=0.02)
            # history, including the copied steps of the first two frames of a scene
            np.testing.assert_allclose(his, f['gt_ego_his_trajs'], atol=1e-5)
            np.testing.assert_array_equal(vad_command_onehot(fut, mask), f['gt_ego_fut_cmd'])
            checked += 1
    assert checked == 81


def test_converter_and_writer_share_the_trajectory_convention(tmp_path):
    """The synthetic-city writer and the converter give the same ego fields for one drive."""
    tool = _tool()
    ego = write_tables(str(tmp_path), num=9, yaw_rate=0.2, lidar_t=NUSCENES_LIDAR2EGO_TRANSLATION,
                       lidar_rot=NUSCENES_LIDAR2EGO_ROTATION)
    conv = tool.create_infos(tool.NuScenesTables.from_json('v1.0-mini', str(tmp_path)),
                             progress=False)['scene-0042']
    ts = np.array([f['timestamp'] for f in conv])
    synth = build_nuscenes_infos('scene-0042', ego, ts)
    for a, b in zip(conv, synth):
        for key in ('gt_ego_fut_trajs', 'gt_ego_fut_masks', 'gt_ego_his_trajs',
                    'gt_ego_fut_cmd'):
            np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
    assert {tuple(f['gt_ego_fut_cmd']) for f in conv} >= {(0, 1, 0), (0, 0, 1)}  # left, straight


class _FakeNuScenes:
    """Duck-typed ``nuscenes.nuscenes.NuScenes``: one record list per table (every JSON file
    of the version, as the devkit loads them) plus the reverse-index fields the devkit adds
    to the records (sample['data'], sample['anns'], sample_data['channel'],
    sample_annotation['category_name'])."""

    def __init__(self, version='v1.0-mini', dataroot='/data/sets/nuscenes', verbose=True):
        self.version, self.dataroot = version, dataroot
        folder = osp.join(dataroot, version)
        for name in sorted(os.listdir(folder)):
            with open(osp.join(folder, name)) as f:
                setattr(self, name[:-5], json.load(f))
        idx = {t: {r['token']: r for r in getattr(self, t)}
               for t in ('sample', 'calibrated_sensor', 'sensor', 'instance', 'category')}
        for s in self.sample:
            s['data'], s['anns'] = {}, []
        for sd in self.sample_data:
            cs = idx['calibrated_sensor'][sd['calibrated_sensor_token']]
            sd['channel'] = idx['sensor'][cs['sensor_token']]['channel']
            if sd['is_key_frame']:
                idx['sample'][sd['sample_token']]['data'][sd['channel']] = sd['token']
        for ann in self.sample_annotation:
            inst = idx['instance'][ann['instance_token']]
            ann['category_name'] = idx['category'][inst['category_token']]['name']
            idx['sample'][ann['sample_token']]['anns'].append(ann['token'])


def _install_fake_devkit(monkeypatch):
    pkg, mod = types.ModuleType('nuscenes'), types.ModuleType('nuscenes.nuscenes')
    mod.NuScenes = _FakeNuScenes
    pkg.nuscenes = mod
    monkeypatch.setitem(sys.modules, 'nuscenes', pkg)
    monkeypatch.setitem(sys.modules, 'nuscenes.nuscenes', mod)


def test_devkit_backend_matches_the_json_reader(tmp_path, monkeypatch):
    tool = _tool()
    write_tables(str(tmp_path), num=6, yaw_rate=0.1)
    ref = tool.create_infos(tool.open_nuscenes('v1.0-mini', str(tmp_path), 'json'),
                            progress=False)
    _install_fake_devkit(monkeypatch)
    for backend in ('devkit', 'auto'):
        nusc = tool.open_nuscenes('v1.0-mini', str(tmp_path), backend)
        assert nusc.source == "NuScenes('v1.0-mini')"  # the devkit object was used
        got = tool.create_infos(nusc, progress=False)
        assert list(got) == list(ref) == ['scene-0042']
        for a, b in zip(got['scene-0042'], ref['scene-0042']):
            assert sorted(a) == sorted(b)
            for key in a:
                np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), key)
    # the CLI goes through the same adapter
    out = str(tmp_path / 'infos.pkl')
    tool.main(['--dataroot', str(tmp_path), '--version', 'v1.0-mini', '--out', out,
               '--backend', 'devkit'])
    assert len(pickle.load(open(out, 'rb'))['infos']['scene-0042']) == 6


def test_devkit_backend_errors(tmp_path, monkeypatch):
    tool = _tool()
    monkeypatch.setitem(sys.modules, 'nuscenes.nuscenes', None)  # not installed
    with pytest.raises(ImportError, match='pip install nuscenes-devkit'):
        tool.open_nuscenes('v1.0-mini', str(tmp_path), 'devkit')
    with pytest.raises(FileNotFoundError, match='scene.json: nuScenes table not found'):
        tool.open_nuscenes('v1.0-mini', str(tmp_path), 'auto')  # falls back to json
    stub = types.SimpleNamespace(scene=[], sample=[], version='v1.0-mini')
    with pytest.raises(TypeError, match=r"missing \['sample_data'"):
        tool.NuScenesTables.from_devkit(stub)
