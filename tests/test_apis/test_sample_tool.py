"""tools/sample.py: every task through the CLI entry point on a tiny config and a checkpoint
saved here; two real subprocess runs (a task + a checkpoint mismatch). Given voxels are kept
exactly outside the region to generate."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, osp.join(ROOT, 'tools'))
from tiny_models import VOXELS, random_voxels, tiny_model_cfg  # noqa: E402

import occworld4d.diffusion  # noqa: E402,F401
from occworld4d.registry import MODELS  # noqa: E402

CONFIG = """
default_scope = 'occworld4d'
custom_imports = dict(imports=['tiny_models'], allow_failed_imports=False)
model = {model!r}
free_label = 0
"""


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('sample')
    cfg_path = str(tmp / 'tiny_dit.py')
    with open(cfg_path, 'w') as f:
        f.write(CONFIG.format(model=tiny_model_cfg()))
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    for p in model.denoiser.parameters():
        if p.requires_grad:
            p.data.add_(0.05 * torch.randn_like(p))
    ckpt = str(tmp / 'tiny.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), ckpt)
    bad = dict(model.state_dict())
    bad.pop('denoiser.final_layer.linear.weight')
    bad['denoiser.extra'] = torch.zeros(1)
    bad_ckpt = str(tmp / 'bad.pth')
    torch.save(dict(state_dict=bad), bad_ckpt)
    scene = random_voxels(1, seed=7)[0].numpy().astype(np.uint8)
    npz = str(tmp / 'scene.npz')
    np.savez(npz, semantics=scene, layout=np.random.rand(VOXELS[0], 8, 8).astype(np.float32))
    return dict(tmp=tmp, cfg=cfg_path, ckpt=ckpt, bad=bad_ckpt, npz=npz, scene=scene)


TASKS = {
    'uncond': [],
    'command': ['--command', 'LEFT'],
    'trajectory': ['--trajectory', 'accelerate'],
    'layout': ['--input', '{npz}'],
    'continue': ['--input', '{npz}', '--overlap', '2'],
    'long': ['--num-frames', '10', '--overlap', '2'],
    'inpaint': ['--input', '{npz}', '--region', '0', '4', '2', '6', '0', '4',
                '--resample-jumps', '2'],
    'outpaint': ['--input', '{npz}', '--shift', '0', '4'],
    'single-frame': ['--input', '{npz}'],
}


def _args(setup, task, out):
    extra = [a.format(npz=setup['npz']) for a in TASKS[task]]
    return [setup['cfg'], setup['ckpt'], '--task', task, '--sampler', 'ddim', '--steps', '2',
            '--seed', '1', '--out', out, '--no-render', *extra]


def test_every_task_through_the_cli(setup, capsys):
    import sample
    scene = setup['scene']
    for task in TASKS:
        out = str(setup['tmp'] / task)
        sample.main(_args(setup, task, out))
        sem = np.load(osp.join(out, 'sample_0.npz'))['semantics']
        assert sem.dtype == np.uint8, task
        if task == 'continue':
            assert sem.shape == (6, 8, 8, 4) and np.array_equal(sem[:4], scene)
        elif task == 'long':
            assert sem.shape == (10, 8, 8, 4)
        elif task == 'inpaint':
            box = np.zeros(scene.shape, bool)
            box[:, 0:4, 2:6, 0:4] = True
            assert np.array_equal(sem[~box], scene[~box])
        elif task == 'outpaint':
            assert sem.shape == (4, 8, 12, 4) and np.array_equal(sem[:, :, :8], scene)
        elif task == 'single-frame':
            assert sem.shape == VOXELS and np.array_equal(sem[0], scene[0])
        else:
            assert sem.shape == VOXELS
    # Same seed -> same sample.
    a = np.load(osp.join(setup['tmp'], 'command', 'sample_0.npz'))['semantics']
    sample.main(_args(setup, 'command', str(setup['tmp'] / 'again')))
    assert np.array_equal(a, np.load(osp.join(setup['tmp'], 'again', 'sample_0.npz'))['semantics'])
    with pytest.raises(SystemExit):
        sample.main([setup['cfg'], setup['ckpt'], '--task', 'inpaint', '--input', setup['npz']])
    assert '--task inpaint needs --region x0 x1 y0 y1 z0 z1' in capsys.readouterr().err


def _run(args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'sample.py'), *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


@pytest.mark.slow
def test_subprocess_renders_and_mismatch_message(setup):
    out = str(setup['tmp'] / 'sub')
    args = [a for a in _args(setup, 'inpaint', out) if a != '--no-render']
    res = _run(args)
    assert res.returncode == 0, res.stderr[-2000:]
    files = sorted(os.listdir(out))
    assert files == ['sample_0.gif', 'sample_0.npz', 'sample_0_bev.png'], files
    res = _run([setup['cfg'], setup['bad'], '--task', 'uncond', '--out', out])
    assert res.returncode == 2
    assert 'bad.pth' in res.stderr and 'denoiser.final_layer.linear.weight' in res.stderr
    assert 'denoiser.extra' in res.stderr


def test_layout_task_without_a_layout_and_sensor_errors(setup, capsys):
    """A scene-only npz needs a layout transform in the config; bad sensor options are named."""
    import sample
    npz = str(setup['tmp'] / 'scene_only.npz')
    np.savez(npz, semantics=setup['scene'])
    out = str(setup['tmp'] / 'layout_err')
    with pytest.raises(SystemExit) as err:
        sample.main([setup['cfg'], setup['ckpt'], '--task', 'layout', '--input', npz,
                     '--out', out, '--no-render'])
    assert err.value.code == 2 and 'no layout transform' in capsys.readouterr().err
    # the sampled occupancy goes to the LiDAR; a camera pkl that does not exist is named
    with pytest.raises(SystemExit) as err:
        sample.main([*_args(setup, 'uncond', out), '--cameras', 'missing.pkl'])
    assert err.value.code == 2
    assert "--cameras 'missing.pkl': no such file and not a preset rig" in capsys.readouterr().err
    sample.main([*_args(setup, 'uncond', out), '--lidar', '--pc-range', '0', '0', '0', '8', '8',
                 '4'])
    pts = np.fromfile(osp.join(out, 'sample_0_sensors', 'lidar', '000.bin'), np.float32)
    pts = pts.reshape(-1, 4)  # (N, 4) x, y, z, label: inside the 8 x 8 x 4 m grid
    assert pts.size == 0 or (pts[:, :3].min() >= -1e-3 and pts[:, :2].max() <= 8 + 1e-3)
    assert len(os.listdir(osp.join(out, 'sample_0_sensors', 'lidar'))) == VOXELS[0]


def _gif_frames(path):
    from PIL import Image, ImageSequence
    with Image.open(path) as im:
        return [np.asarray(f.convert('RGB')) for f in ImageSequence.Iterator(im)]


def test_sample_pictures_are_the_visualize_tools_and_the_npz_draws_alone(setup):
    """sample.py records vocabulary, class names, free label, grid and frame rate in every
    npz; its pictures are pixel-identical to what tools/visualize.py draws from the npz
    alone (one renderer: legend, scale bar, ego, frame / time, >= 512 px)."""
    import sample
    import visualize
    from PIL import Image

    from occworld4d.structures import get_vocabulary
    cfg = str(setup['tmp'] / 'tiny_named.py')
    with open(cfg, 'w') as f:
        f.write(CONFIG.format(model=tiny_model_cfg()) + "vocabulary = 'dynamiccity_carlasc'\n"
                'pc_range = [-12.8, -12.8, -2.0, 12.8, 12.8, 1.0]\nframe_rate = 2.0\n')
    for config, name in ((cfg, 'named'), (setup['cfg'], 'bare')):
        out = str(setup['tmp'] / f'pictures_{name}')
        args = [a for a in _args(setup, 'uncond', out) if a != '--no-render']
        sample.main([config] + args[1:])
        z = np.load(osp.join(out, 'sample_0.npz'))
        if name == 'named':
            assert str(z['vocabulary']) == 'dynamiccity_carlasc'
            assert tuple(z['class_names']) == get_vocabulary('dynamiccity_carlasc').classes
            np.testing.assert_allclose(z['voxel_size'], [3.2, 3.2, 0.75])
            assert float(z['frame_rate']) == 2.0
        else:  # no vocabulary in the config: the labels are named 'class k'
            assert 'vocabulary' not in z and list(z['class_names'])[1] == 'class 1'
            assert int(z['free_label']) == 0
        vis = osp.join(out, 'vis.gif')
        visualize.main([osp.join(out, 'sample_0.npz'), '--out', vis])
        mine, theirs = _gif_frames(osp.join(out, 'sample_0.gif')), _gif_frames(vis)
        assert len(mine) == VOXELS[0] == len(theirs)
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs)), name
        png = np.asarray(Image.open(osp.join(out, 'sample_0_bev.png')).convert('RGB'))
        assert np.array_equal(png, mine[0]) and min(png.shape[:2]) >= 512


def test_sample_view_iso(setup):
    """--view iso: the isometric picture, drawn as tools/visualize.py --mode iso draws it."""
    import sample
    import visualize
    from PIL import Image
    out = str(setup['tmp'] / 'iso')
    args = [a for a in _args(setup, 'uncond', out) if a != '--no-render']
    sample.main(args + ['--view', 'iso'])
    assert sorted(os.listdir(out)) == ['sample_0.gif', 'sample_0.npz', 'sample_0_iso.png']
    vis = osp.join(out, 'vis.gif')
    visualize.main([osp.join(out, 'sample_0.npz'), '--mode', 'iso', '--out', vis])
    mine = np.asarray(Image.open(osp.join(out, 'sample_0_iso.png')).convert('RGB'))
    assert np.array_equal(mine, _gif_frames(vis)[0]) and min(mine.shape[:2]) >= 512
