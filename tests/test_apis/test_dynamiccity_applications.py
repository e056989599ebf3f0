"""Every DynamicCity application through tools/sample.py with the real tiny DynamicCity
generator (configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py: HexPlane VAE + padded
rollout + Rollout DiT), a checkpoint saved here and a synthetic-city scene as the input:
output shapes, given voxels kept exactly, and the user's conditions reaching the sampler."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'dynamiccity', 'dynamiccity_dit_tiny_synthetic-city.py')
sys.path.insert(0, osp.join(ROOT, 'tools'))

import occworld4d  # noqa: E402,F401
from occworld4d.apis import generation as G  # noqa: E402
from occworld4d.datasets import SyntheticCityDataset  # noqa: E402
from occworld4d.models.generators import LatentDiffusion  # noqa: E402
from occworld4d.registry import MODELS  # noqa: E402

T, X, Y, Z = 8, 32, 32, 8


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dc_apps')
    init_default_scope('occworld4d')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    for p in model.denoiser.parameters():  # leave adaLN-Zero's all-zero start: outputs vary
        if p.requires_grad:
            p.data.add_(0.05 * torch.randn_like(p))
    ckpt = str(tmp / 'dit.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), ckpt)
    ds = SyntheticCityDataset(
        num_scenes=1, num_frames=T, grid_size=(X, Y, Z), preset='carlasc',
        vocabulary='dynamiccity_carlasc', seed=3,
        pipeline=[dict(type='MakeLayout', classes=('vehicle', ), pool=4),
                  dict(type='PackOccInputs')])
    item = ds[0]['inputs']
    scene = item['voxels'].numpy()
    npz = str(tmp / 'scene.npz')
    np.savez(npz, semantics=scene, layout=item['layout'].numpy())
    return dict(tmp=tmp, ckpt=ckpt, npz=npz, scene=scene)


def _run(setup, name, *extra):
    import sample
    out = str(setup['tmp'] / name)
    sample.main([CONFIG, setup['ckpt'], '--sampler', 'ddim', '--steps', '2', '--seed', '0',
                 '--out', out, '--no-render', *extra])
    return np.load(osp.join(out, 'sample_0.npz'))['semantics']


def test_every_application_from_the_cli(setup):
    scene, npz = setup['scene'], setup['npz']
    for name, args in (('uncond', ['--task', 'uncond']),
                       ('command', ['--task', 'command', '--command', 'LEFT', '--cfg', '4']),
                       ('trajectory', ['--task', 'trajectory', '--trajectory', 'right']),
                       ('layout', ['--task', 'layout', '--input', npz])):
        sem = _run(setup, name, *args)
        assert sem.shape == (T, X, Y, Z) and sem.dtype == np.uint8 and sem.max() < 12, name
    # HexPlane-conditioned continuation and long sequences (windows of 8, overlap 4).
    sem = _run(setup, 'continue', '--task', 'continue', '--input', npz, '--num-frames', '12')
    assert sem.shape == (12, X, Y, Z) and np.array_equal(sem[:T], scene)
    sem = _run(setup, 'long', '--task', 'long', '--num-frames', '16', '--command', 'FORWARD')
    assert sem.shape == (16, X, Y, Z)
    # Inpainting a 4D box: everything outside it is the input.
    sem = _run(setup, 'inpaint', '--task', 'inpaint', '--input', npz,
               '--region', '8', '24', '8', '24', '0', '8', '0', '4')
    box = np.zeros(scene.shape, bool)
    box[0:4, 8:24, 8:24, 0:8] = True
    assert sem.shape == scene.shape and np.array_equal(sem[~box], scene[~box])
    # Outpainting along x and y at once: the whole (X + 8) x (Y + 8) canvas, scene kept.
    sem = _run(setup, 'outpaint', '--task', 'outpaint', '--input', npz, '--shift', '8', '-8')
    assert sem.shape == (T, X + 8, Y + 8, Z) and np.array_equal(sem[:, :X, 8:], scene)
    # Single-frame-conditioned 4D generation: frame 0 kept.
    sem = _run(setup, 'single', '--task', 'single-frame', '--input', npz)
    assert sem.shape == scene.shape and np.array_equal(sem[0], scene[0])


def test_cli_conditions_reach_every_application(setup, monkeypatch):
    seen = []
    orig = LatentDiffusion.sample

    def spy(self, *args, cond=None, **kwargs):
        seen.append(dict(cond or {}))
        return orig(self, *args, cond=cond, **kwargs)

    monkeypatch.setattr(LatentDiffusion, 'sample', spy)
    npz = setup['npz']
    tasks = dict(inpaint=['--region', '0', '16', '0', '16', '0', '8'],
                 outpaint=['--shift', '0', '8'], continue_=['--num-frames', '12'],
                 single=[])
    names = dict(continue_='continue', single='single-frame')
    for key, extra in tasks.items():
        seen.clear()
        _run(setup, f'cond_{key}', '--task', names.get(key, key), '--input', npz,
             '--command', 'RIGHT', '--trajectory', 'left', *extra)
        assert seen, key
        for cond in seen:
            assert torch.equal(cond['command'].cpu(), torch.tensor([3])), key
            assert np.allclose(cond['trajectory'][0].cpu().numpy(),
                               G.trajectory_preset('left', T)), key
            # Continuation windows also see the previous window's HexPlane; single-frame
            # sees the static window's.
            assert ('hexplane' in cond) == (key in ('continue_', 'single')), key
            # the input's layout conditions the tasks that keep the input's space-time extent
            assert ('layout' in cond) == (key in ('inpaint', 'single')), key
