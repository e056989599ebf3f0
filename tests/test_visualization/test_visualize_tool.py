"""tools/visualize.py renders npz files with the right colours."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from occworld4d.visualization import get_palette

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location('visualize_tool',
                                                  osp.join(ROOT, 'tools', 'visualize.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_visualize_single_frame_bev_png(tmp_path):
    sem = np.full((4, 5, 3), 17, np.uint8)
    sem[1, 2, 0] = 4
    np.savez(tmp_path / 'f.npz', semantics=sem)
    out = _tool().main([str(tmp_path / 'f.npz'), '--out', str(tmp_path / 'f.png'),
                        '--scale', '1', '--no-shading'])
    img = np.asarray(Image.open(out).convert('RGB'))
    assert img.shape == (4, 5, 3)
    assert tuple(img[4 - 1 - 1, 5 - 1 - 2]) == tuple(get_palette('occ3d_nuscenes')[4])


def test_visualize_sequence_gif_with_npz_vocabulary(tmp_path):
    sem = np.zeros((3, 4, 4, 2), np.uint8)
    for t in range(3):
        sem[t, t, 0, 0] = 10
    np.savez(tmp_path / 's.npz', pred_semantics=sem, vocabulary='dynamiccity_carlasc')
    out = _tool().main([str(tmp_path / 's.npz'), '--mode', 'iso'])
    assert out.endswith('s_iso.gif') and Image.open(out).n_frames == 3


def test_visualize_errors(tmp_path):
    np.savez(tmp_path / 'bad.npz', semantics=np.full((2, 2, 2), 40, np.uint8))
    with pytest.raises(SystemExit):
        _tool().main([str(tmp_path / 'bad.npz')])
    with pytest.raises(SystemExit):
        _tool().main([str(tmp_path / 'missing.npz')])
