"""tools/render_sensors.py, create_layout_cache.py and benchmark_lidar.py end to end."""
import importlib.util
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from PIL import Image

from occworld4d.rendering.bev_layout import LAYOUT_CHANNELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = ['--pc-range', '-4', '-4', '-1', '4', '4', '2.2', '--voxel-size', '0.4', '0.4', '0.4']


def load_tool(rel):
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(rel))[0],
                                                  osp.join(REPO, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def real_paths(root):
    return (osp.join(root, 'occ3d_nuscenes', 'gts', 'scene-1077',
                     '29796060110c4163b07f06eff4af0753', 'labels.npz'),
            osp.join(root, 'nuscenes', 'keyframe_scene-0061', 'n015-2018-07-24-11-22-45+0800.pkl'))


def test_render_sensors_real_frame_lidar_and_cameras(real_root, tmp_path):
    tool = load_tool('tools/render_sensors.py')
    labels, calib = real_paths(real_root)
    assert tool.main([labels, '--calib', calib, '--out', str(tmp_path), '--scale', '0.125',
                      '--lidar-pose', 'calib', '--device', 'cpu']) == 0
    pts = np.fromfile(tmp_path / 'lidar' / '000.bin', dtype=np.float32).reshape(-1, 4)
    assert len(pts) > 15000
    assert set(np.unique(pts[:, 3]).astype(int)) <= set(range(17))
    assert np.abs(pts[:, :2]).max() <= 40.0 + 1e-3
    views = sorted(p.name for p in (tmp_path / 'cameras' / '000').iterdir())
    assert len(views) == 12 and 'CAM_FRONT_depth.png' in views
    depth = np.asarray(Image.open(tmp_path / 'cameras' / '000' / 'CAM_FRONT_depth.png'))
    assert depth.shape == (112, 200) and depth.max() > 5000  # mm: something beyond 5 m
    sem = np.asarray(Image.open(tmp_path / 'cameras' / '000' / 'CAM_FRONT_semantic.png'))
    assert sem.shape == (112, 200, 3)


def test_render_sensors_sequence_and_errors(tmp_path):
    tool = load_tool('tools/render_sensors.py')
    grid = np.full((2, 20, 20, 8), 17, np.uint8)
    grid[:, :, :, 0] = 11
    grid[1, 15, :, :] = 15  # a wall in frame 1 only
    np.savez(tmp_path / 'seq.npz', pred_semantics=grid)
    out = tmp_path / 'out'
    assert tool.main([str(tmp_path / 'seq.npz'), '--lidar', '--out', str(out),
                      '--device', 'cpu'] + SMALL) == 0
    f0 = np.fromfile(out / 'lidar' / '000.bin', np.float32).reshape(-1, 4)
    f1 = np.fromfile(out / 'lidar' / '001.bin', np.float32).reshape(-1, 4)
    assert set(f0[:, 3]) == {11.0} and 15.0 in set(f1[:, 3])
    with pytest.raises(tool.RenderError, match=r'\(20, 20, 8\).*found shape \(2, 20, 20, 9\)'):
        np.savez(tmp_path / 'bad.npz', semantics=np.zeros((2, 20, 20, 9), np.uint8))
        tool.main([str(tmp_path / 'bad.npz'), '--out', str(out)] + SMALL)
    with pytest.raises(tool.RenderError, match='no semantic grid.*found keys'):
        np.savez(tmp_path / 'nokey.npz', a=1, b=2)
        tool.main([str(tmp_path / 'nokey.npz'), '--out', str(out)] + SMALL)
    # --cameras without --calib: the preset nuScenes-like rig (6 cameras x semantic + depth)
    assert tool.main([str(tmp_path / 'seq.npz'), '--cameras', '--out', str(out / 'rig'),
                      '--device', 'cpu'] + SMALL) == 0
    assert len(os.listdir(out / 'rig' / 'cameras' / '001')) == 12
    with pytest.raises(tool.RenderError, match='no such file and not a preset rig'):
        tool.main([str(tmp_path / 'seq.npz'), '--cameras', '--calib', 'nope.pkl',
                   '--out', str(out)] + SMALL)
    bad_calib = tmp_path / 'calib.pkl'
    with open(bad_calib, 'wb') as f:
        pickle.dump({'data_list': [{'images': {'CAM_FRONT': {'cam2img': np.eye(3)}}}]}, f)
    with pytest.raises(KeyError, match="CAM_FRONT has no 'cam2ego'"):
        tool.main([str(tmp_path / 'seq.npz'), '--cameras', '--calib', str(bad_calib),
                   '--out', str(out)] + SMALL)


def test_create_layout_cache_from_infos_and_occupancy(real_root, tmp_path):
    tool = load_tool('tools/dataset_converters/create_layout_cache.py')
    with open(osp.join(real_root, 'nuscenes', 'infos', 'nuscenes_mini_infos_val.pkl'),
              'rb') as f:
        infos = pickle.load(f)
    small = tmp_path / 'infos.pkl'
    with open(small, 'wb') as f:
        pickle.dump(dict(infos=infos['infos'][:2], metadata=infos['metadata']), f)
    out = tmp_path / 'lay'
    assert tool.main(['--infos', str(small), '--out', str(out)]) == 0
    files = sorted(out.rglob('*.npz'))
    assert [p.parent.name for p in files] == ['scene-0103', 'scene-0103']
    token = infos['infos'][0]['token']
    with np.load(out / 'scene-0103' / f'{token}.npz') as z:
        assert z['layout'].shape == (len(LAYOUT_CHANNELS), 200, 200)
        assert tuple(z['channels']) == LAYOUT_CHANNELS
        vehicle = LAYOUT_CHANNELS.index('vehicle')
        assert z['layout'][vehicle].sum() > 0
        assert (z['semantic'][z['layout'][vehicle] > 0] >= vehicle + 1).all()
    assert not list(out.rglob('*.tmp*'))
    # The temporal_v3_scene layout: infos = {scene name: [frames]} -> folders by scene name.
    by_scene = tmp_path / 'by_scene.pkl'
    with open(by_scene, 'wb') as f:
        pickle.dump(dict(infos={'scene-x': infos['infos'][:1], 'scene-y': infos['infos'][1:2]},
                         metadata=infos['metadata']), f)
    assert tool.main(['--infos', str(by_scene), '--out', str(tmp_path / 'lay_s')]) == 0
    assert sorted(p.parent.name for p in (tmp_path / 'lay_s').rglob('*.npz')) == [
        'scene-x', 'scene-y']
    # Occupancy tree (Occ3D-Waymo-like names and key), mirrored into the output.
    tree = tmp_path / 'waymo' / '000'
    tree.mkdir(parents=True)
    grid = np.full((200, 200, 16), 15, np.uint8)
    grid[10:20, 30:40, 0] = 13  # ROAD
    np.savez(tree / '003_04.npz', voxel_label=grid)
    out2 = tmp_path / 'lay2'
    assert tool.main(['--occ-root', str(tmp_path / 'waymo'), '--pattern', '**/*_04.npz',
                      '--key', 'voxel_label', '--vocabulary', 'occ3d_waymo',
                      '--out', str(out2)]) == 0
    with np.load(out2 / '000' / '003_04_layout.npz') as z:
        road = z['layout'][LAYOUT_CHANNELS.index('road')]
        assert road.sum() == 100 and road[10:20, 30:40].all()
    with pytest.raises(KeyError, match="key 'semantics' not found"):
        tool.main(['--occ-root', str(tmp_path / 'waymo'), '--pattern', '**/*_04.npz',
                   '--out', str(out2), '--overwrite'])


def test_benchmark_lidar_prints_rays_per_second(real_root, capsys):
    tool = load_tool('tools/analysis_tools/benchmark_lidar.py')
    assert tool.main(['--repeats', '1', '--devices', 'cpu']) == 0
    text = capsys.readouterr().out
    assert '34688 rays' in text and 'rays/s' in text


def test_export_sensors_api(tmp_path):
    import torch
    from occworld4d.rendering import (CameraRenderer, GridGeometry, LidarSimulator,
                                      PinholeCamera, export_sensors, read_points)
    geom = GridGeometry((-4, -4, -1, 4, 4, 2.2), (0.4, 0.4, 0.4))
    grid = torch.full((20, 20, 8), 17, dtype=torch.long)
    grid[15] = 15  # wall at x = 2.0
    cam2ego = np.array([[0, 0, 1, 0.0], [-1, 0, 0, 0.0], [0, -1, 0, 1.0], [0, 0, 0, 1]], float)
    cam = PinholeCamera('CAM_T', np.array([[10.0, 0, 8], [0, 10.0, 4.5], [0, 0, 1]]),
                        cam2ego, 16, 9)
    sim = LidarSimulator('nuscenes_lidar_top', geom)
    stats = export_sensors(grid, str(tmp_path), sim, CameraRenderer(geom), {'CAM_T': cam},
                           np.zeros((18, 3), np.uint8), lidar_frame='sensor')
    assert stats['frames'] == 1 and stats['images'] == 2 and stats['points'] > 0
    pts = read_points(str(tmp_path / 'lidar' / '000.bin'))
    assert len(pts) == stats['points'] and set(pts[:, 3]) == {15.0}
    # Sensor frame: the wall (ego x = 2.0) is at x = 2.0 - 0.943713 in front of the sensor.
    front = np.abs(pts[:, 1]) < 0.05
    np.testing.assert_allclose(pts[front, 0], 2.0 - 0.943713, atol=1e-4)
    with pytest.raises(ValueError, match='renderer and a palette'):
        export_sensors(grid, str(tmp_path), cameras={'CAM_T': cam})
    with pytest.raises(ValueError, match=r'\(T, X, Y, Z\)'):
        export_sensors(grid[0], str(tmp_path), sim)
