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


def _find_legend(img, vocabulary):
    """True when the picture's right part holds every class colour of ``vocabulary`` as a
    14 x 14 swatch."""
    from occworld4d.visualization.figure import class_entries
    right = img[:, -200:]
    for _, rgb in class_entries(vocabulary):
        hit = (right == np.array(rgb, np.uint8)).all(axis=2)
        if not any(hit[r:r + 12, :].any(axis=0).sum() >= 12 and hit[r:r + 12].all(axis=0).any()
                   for r in np.flatnonzero(hit.any(axis=1))):
            return False
    return True


def test_visualize_single_frame_bev_png(tmp_path, capsys):
    sem = np.full((4, 5, 3), 17, np.uint8)
    sem[0, 4, 0] = 4  # a car in the back right corner (the ego is at the centre)
    np.savez(tmp_path / 'f.npz', semantics=sem)
    out = _tool().main([str(tmp_path / 'f.npz'), '--out', str(tmp_path / 'f.png'),
                        '--no-shading'])
    err = capsys.readouterr().err
    assert 'records no "vocabulary"; assuming occ3d_nuscenes' in err  # today's default, warned
    img = np.asarray(Image.open(out).convert('RGB'))
    assert img.shape[0] >= 512 + 40 and img.shape[1] >= 512 + 190
    car = get_palette('occ3d_nuscenes')[4]
    # 4 x 5 voxels -> 128 px per voxel (nearest-neighbour): the car is one 128 px block at
    # the panel's bottom left (below the 46 px header and titles, after the 8 px margin)
    block = img[46 + 3 * 128:46 + 4 * 128, 8:8 + 128]
    assert (block == car).all(axis=2)[:90].all()  # above the scale bar, all car
    assert (img[46:46 + 3 * 128, 8:8 + 640] == car).all(axis=2).sum() == 0
    assert _find_legend(img, 'occ3d_nuscenes')


def test_visualize_uses_recorded_vocabulary_and_flag_wins(tmp_path, capsys):
    sem = np.zeros((1, 8, 8, 2), np.uint8)
    sem[0, :, :, 0] = 6
    np.savez(tmp_path / 's.npz', semantics=sem, vocabulary='dynamiccity_carlasc')
    out = _tool().main([str(tmp_path / 's.npz'), '--out', str(tmp_path / 's.png')])
    assert 'warning' not in capsys.readouterr().err
    img = np.asarray(Image.open(out).convert('RGB'))
    assert _find_legend(img, 'dynamiccity_carlasc') and not _find_legend(img, 'occ3d_nuscenes')
    # --vocabulary wins over the recorded one (dynamiccity_nuscenes has the same 12 ids)
    out = _tool().main([str(tmp_path / 's.npz'), '--out', str(tmp_path / 't.png'),
                        '--vocabulary', 'occ3d_nuscenes'])
    assert 'overrides' in capsys.readouterr().err
    assert _find_legend(np.asarray(Image.open(out).convert('RGB')), 'occ3d_nuscenes')


def test_visualize_sequence_gif_with_npz_vocabulary(tmp_path):
    sem = np.zeros((3, 4, 4, 2), np.uint8)
    for t in range(3):
        sem[t, t, 0, 0] = 10
    np.savez(tmp_path / 's.npz', pred_semantics=sem, vocabulary='dynamiccity_carlasc',
             frame_rate=np.float32(5.0))
    out = _tool().main([str(tmp_path / 's.npz'), '--mode', 'iso'])
    gif = Image.open(out)
    assert out.endswith('s_iso.gif') and gif.n_frames == 3
    assert gif.info['duration'] == 200  # the recorded 5 Hz
    assert gif.size[0] >= 512


def test_visualize_compare_forecast_mp4(tmp_path, capsys):
    from occworld4d.visualization import EGO_COLOUR, read_mp4
    from occworld4d.visualization.figure import DIFF_PALETTE
    gt = np.zeros((6, 16, 16, 2), np.uint8)
    gt[:, :, :, 0] = 6
    pred = gt[2:].copy()  # a 4-frame forecast after 2 history frames
    pred[:, 2:6, 2:6, 1] = 10  # an extra vehicle block
    np.savez(tmp_path / 'gt.npz', semantics=gt, vocabulary='dynamiccity_carlasc')
    np.savez(tmp_path / 'p.npz', semantics=pred, vocabulary='dynamiccity_carlasc',
             voxel_size=np.array([0.5, 0.5, 0.5]), frame_rate=np.float32(2.0))
    out = _tool().main([str(tmp_path / 'p.npz'), '--compare', str(tmp_path / 'gt.npz'),
                        '--out', str(tmp_path / 'c.mp4')])
    assert 'GT frames 2..5' in capsys.readouterr().err
    frames = read_mp4(out)
    assert len(frames) == 4
    f = frames[0].astype(int)
    assert f.shape[1] >= 3 * 512 and f.shape[0] >= 512
    # the three panels are 512 px (32 px / voxel) side by side after an 8 px margin, below
    # the 46 px header + titles: ego at each panel's centre, the extra block red in the diff
    y0 = 46
    for k in range(3):
        x0 = 8 + k * (512 + 8)
        assert np.abs(f[y0 + 256, x0 + 256] - EGO_COLOUR).max() < 40
    x0 = 8 + 2 * (512 + 8)
    assert np.abs(f[y0 + int((16 - 4) * 32), x0 + int((16 - 4) * 32)] - DIFF_PALETTE[2]).max() < 40


def test_visualize_errors(tmp_path, capsys):
    np.savez(tmp_path / 'bad.npz', semantics=np.full((2, 2, 2), 40, np.uint8))
    with pytest.raises(SystemExit):
        _tool().main([str(tmp_path / 'bad.npz')])
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.npz'}: labels span [40, 40] but vocabulary 'occ3d_nuscenes' has " \
        '18 classes' in err
    with pytest.raises(SystemExit):
        _tool().main([str(tmp_path / 'missing.npz')])
    assert f"input '{tmp_path / 'missing.npz'}' does not exist" in capsys.readouterr().err
    np.savez(tmp_path / 'a.npz', semantics=np.zeros((3, 4, 4, 2), np.uint8),
             vocabulary='dynamiccity_carlasc')
    np.savez(tmp_path / 'b.npz', semantics=np.zeros((2, 4, 4, 2), np.uint8))
    capsys.readouterr()
    with pytest.raises(SystemExit):  # sample longer than GT
        _tool().main([str(tmp_path / 'a.npz'), '--compare', str(tmp_path / 'b.npz')])
    assert 'the sample has 3 frames, GT only 2' in capsys.readouterr().err
    np.savez(tmp_path / 'c.npz', semantics=np.zeros((2, 4, 4, 2), np.uint8),
             vocabulary='nonsense')
    with pytest.raises(SystemExit):
        _tool().main([str(tmp_path / 'c.npz')])
    assert "records vocabulary 'nonsense'" in capsys.readouterr().err
