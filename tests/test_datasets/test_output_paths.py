"""Issue 15, item 6: names read from data files (camera names in calibration pkls, scene names
and tokens in info pkls) are sanitised before they become file names; outputs never leave
``--out``."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from helpers import load_tool
from occworld4d.rendering import CameraRenderer, GridGeometry, PinholeCamera, export_sensors
from occworld4d.utils import join_inside, safe_file_name


def _files(root):
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_safe_file_name_and_join_inside(tmp_path):
    assert safe_file_name('CAM_FRONT') == 'CAM_FRONT'
    assert safe_file_name('scene-0103') == 'scene-0103'
    assert safe_file_name('../../x') == '.._.._x'
    assert safe_file_name('/etc/passwd') == '_etc_passwd'
    assert safe_file_name('a\\b c') == 'a_b_c'
    for bad in ('', '.', '..', '...'):
        with pytest.raises(ValueError, match='cannot be used as a file name'):
            safe_file_name(bad, 'token')
    out = tmp_path / 'out'
    out.mkdir()
    assert join_inside(str(out), 'a', 'b.npz') == osp.join(str(out), 'a', 'b.npz')
    with pytest.raises(ValueError, match='leaves the output folder'):
        join_inside(str(out), '..', 'x.npz')
    os.symlink(str(tmp_path), str(out / 'link'))  # a symlink inside --out pointing out
    with pytest.raises(ValueError, match='leaves the output folder'):
        join_inside(str(out), 'link', 'x.npz')


def test_export_sensors_camera_names_stay_inside_out(tmp_path):
    geom = GridGeometry((-4, -4, -1, 4, 4, 2.2), (0.4, 0.4, 0.4))
    grid = torch.full((20, 20, 8), 17, dtype=torch.long)
    grid[15] = 15
    cam2ego = np.array([[0, 0, 1, 0.0], [-1, 0, 0, 0.0], [0, -1, 0, 1.0], [0, 0, 0, 1]], float)
    k = np.array([[10.0, 0, 8], [0, 10.0, 4.5], [0, 0, 1]])
    cams = {'../../x': PinholeCamera('../../x', k, cam2ego, 16, 9),
            'CAM_FRONT': PinholeCamera('CAM_FRONT', k, cam2ego, 16, 9)}
    out = tmp_path / 'a' / 'b' / 'out'
    stats = export_sensors(grid, str(out), None, CameraRenderer(geom), cams,
                           np.zeros((18, 3), np.uint8))
    assert stats['images'] == 4
    assert _files(tmp_path) == sorted(
        osp.join('a', 'b', 'out', 'cameras', '000', n) for n in
        ('.._.._x_semantic.png', '.._.._x_depth.png', 'CAM_FRONT_semantic.png',
         'CAM_FRONT_depth.png'))
    # two names that collapse to one file name are refused, not overwritten
    cams2 = {'a/b': cams['CAM_FRONT'], 'a_b': cams['CAM_FRONT']}
    with pytest.raises(ValueError, match='same file name'):
        export_sensors(grid, str(out), None, CameraRenderer(geom), cams2,
                       np.zeros((18, 3), np.uint8))


def _info(token, scene):
    return dict(token=token, _scene=scene, gt_boxes=np.zeros((1, 7)), gt_names=['car'],
                lidar2ego_rotation=[1.0, 0.0, 0.0, 0.0], lidar2ego_translation=[0.0, 0.0, 0.0])


def test_create_layout_cache_tokens_stay_inside_out(tmp_path):
    tool = load_tool('tools/dataset_converters/create_layout_cache.py')
    pkl = tmp_path / 'data' / 'infos.pkl'
    pkl.parent.mkdir()
    with open(pkl, 'wb') as f:  # VAD-style scene dict: {scene name: [frames]}
        pickle.dump(dict(infos={'../..': [_info('../../evil', '../..')],
                                'scene-1': [_info('tok1', 'scene-1')]},
                         metadata=dict(version='v1.0-mini')), f)
    out = tmp_path / 'deep' / 'out'
    assert tool.main(['--infos', str(pkl), '--out', str(out)]) == 0
    written = _files(tmp_path)
    assert sorted(w for w in written if w.endswith('.npz')) == [
        osp.join('deep', 'out', '.._..', '.._.._evil.npz'),
        osp.join('deep', 'out', 'scene-1', 'tok1.npz')], written
    with np.load(out / '.._..' / '.._.._evil.npz') as z:
        assert z['layout'].any()  # the car box was drawn

    # a token that cannot be a file name: one message naming the file and frame
    with open(pkl, 'wb') as f:
        pickle.dump(dict(infos=[_info('..', 'scene-2')], metadata={}), f)
    with pytest.raises(ValueError, match=r'infos.pkl frame 0: token .*cannot be used'):
        tool.main(['--infos', str(pkl), '--out', str(out)])


def test_layout_cache_reader_uses_the_written_names(tmp_path):
    """UniSceneLayout reads back what create_layout_cache.py wrote for an odd token."""
    from occworld4d.utils import save_npz_atomic
    from occworld4d.datasets.transforms.uniscene_layout import UniSceneLayout
    t = UniSceneLayout(source='cache', cache_dir=str(tmp_path), x_range=(-0.8, 0.8),
                       y_range=(-0.8, 0.8), resolution=0.4)
    shape = (len(t.rasterizer.channels), ) + t.rasterizer.grid.shape
    save_npz_atomic(str(tmp_path / 'sc_1' / 'a_b.npz'), layout=np.ones(shape, np.uint8))
    lay = t._from_cache(dict(scene='sc/1', frame_ids=['a/b']))
    assert lay.shape[0] == 1 and lay.all()
