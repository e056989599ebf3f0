"""create_nuscenes_occ_infos on a minimal hand-written set of nuScenes JSON tables.

nuscenes-devkit itself is not installed in the test environment (it pins numpy < 2); the
tool's built-in reader loads the same tables, including the reverse indices the devkit
builds (sample['data'], sample['anns'])."""
import importlib.util
import json
import os.path as osp
import pickle

import numpy as np
import pytest

from occworld4d.datasets import Occ3DNuScenesDataset
from occworld4d.datasets.geometry import RIGHT

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


def write_tables(root, num=8, yaw_rate=0.0, step=2.0):
    """One scene of ``num`` keyframes (2 Hz) with a LIDAR_TOP and one car track."""
    tok = lambda kind, i: f'{kind}{i:028d}'  # noqa: E731  32-char tokens
    samples, sds, poses, anns = [], [], [], []
    x = y = yaw = 0.0
    for i in range(num):
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
                                translation=LIDAR_T, rotation=LIDAR_ROT, camera_intrinsic=[])],
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
    import os
    os.makedirs(folder, exist_ok=True)
    for name, records in tables.items():
        with open(osp.join(folder, f'{name}.json'), 'w') as f:
            json.dump(records, f)


def test_straight_scene_exact_values(tmp_path):
    tool = _tool()
    write_tables(str(tmp_path))
    nusc = tool.NuScenesTables('v1.0-mini', str(tmp_path))
    infos = tool.create_infos(nusc, progress=False)['scene-0042']
    assert len(infos) == 8 and [f['frame_idx'] for f in infos] == list(range(8))
    f0 = infos[0]
    # ego drives 2 m a frame along its x: in LiDAR axes (x right, y forward) that is (0, 2)
    np.testing.assert_allclose(f0['gt_ego_fut_trajs'], [[0, 2]] * 6, atol=1e-6)
    np.testing.assert_array_equal(f0['gt_ego_fut_masks'], np.ones(6))
    np.testing.assert_array_equal(f0['gt_ego_fut_cmd'], [0, 0, 1])  # straight
    np.testing.assert_array_equal(f0['gt_ego_his_trajs'], np.zeros((2, 2)))
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
        _tool().NuScenesTables('v1.0-mini', str(tmp_path))


def test_ego_offsets_reproduce_the_real_info_file(real_root):
    """On the real 81-frame file: our per-step offsets and commands match VAD's."""
    from occworld4d.datasets.geometry import pose_matrix
    tool = _tool()
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
            fut, mask, _ = tool.ego_offsets(lidar, i)
            np.testing.assert_array_equal(mask, f['gt_ego_fut_masks'])
            np.testing.assert_allclose(fut, f['gt_ego_fut_trajs'], atol=0.02)
            np.testing.assert_array_equal(tool.command_onehot(fut, mask), f['gt_ego_fut_cmd'])
            checked += 1
    assert checked == 81
