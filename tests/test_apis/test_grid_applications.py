"""Inpainting, outpainting, continuation, long sequences and single frame for token-grid
latents (GridLatentAdapter) through tools/sample.py: the tiny OccSora DiT (4D VQ tokens
16 x 4 x 8 x 8 over 8 x 32 x 32 x 8 voxels) and one layout-conditioned inpainting run of the
tiny UniScene DiT (KL-VAE latent 4 x 8 x 16 x 16). Checkpoints of randomly perturbed models
are saved here; the checks are output shapes, the given voxels kept exactly, the known latent
cells the sampler receives and the conditions reaching it."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OCCSORA = osp.join(ROOT, 'configs', 'occsora', 'occsora_dit_tiny_synthetic-city.py')
UNISCENE = osp.join(ROOT, 'configs', 'uniscene', 'uniscene_dit_tiny_synthetic-city.py')
sys.path.insert(0, osp.join(ROOT, 'tools'))

import occworld4d  # noqa: E402,F401
from occworld4d.datasets import SyntheticCityDataset  # noqa: E402
from occworld4d.models.generators import LatentDiffusion  # noqa: E402
from occworld4d.registry import MODELS  # noqa: E402

T, X, Y, Z = 8, 32, 32, 8


def _checkpoint(config, path):
    init_default_scope('occworld4d')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    for p in model.parameters():  # leave adaLN-Zero's all-zero start: outputs vary
        if p.requires_grad:
            p.data.add_(0.05 * torch.randn_like(p))
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), path)
    return path


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('grid_apps')
    ds = SyntheticCityDataset(num_scenes=1, num_frames=T, grid_size=(X, Y, Z), preset='carlasc',
                              vocabulary='dynamiccity_carlasc', seed=3)
    scene = ds[0]['inputs']['voxels'].numpy()
    npz = str(tmp / 'scene.npz')
    np.savez(npz, semantics=scene)
    return dict(tmp=tmp, scene=scene, npz=npz,
                ckpt=_checkpoint(OCCSORA, str(tmp / 'occsora.pth')))


@pytest.fixture
def spy(monkeypatch):
    """Records the cond / known / known_mask of every LatentDiffusion.sample call."""
    seen = []
    orig = LatentDiffusion.sample

    def wrapped(self, *args, **kwargs):
        seen.append(dict(kwargs))
        return orig(self, *args, **kwargs)

    monkeypatch.setattr(LatentDiffusion, 'sample', wrapped)
    return seen


def _run(tmp, config, ckpt, name, *extra):
    import sample
    out = str(tmp / name)
    sample.main([config, ckpt, '--sampler', 'ddim', '--steps', '2', '--seed', '0', '--out', out,
                 '--no-render', *extra])
    return np.load(osp.join(out, 'sample_0.npz'))['semantics']


def test_occsora_inpaint_outpaint(setup, spy):
    scene, npz, tmp, ckpt = setup['scene'], setup['npz'], setup['tmp'], setup['ckpt']
    sem = _run(tmp, OCCSORA, ckpt, 'inpaint', '--task', 'inpaint', '--input', npz,
               '--trajectory', 'left', '--region', '8', '16', '20', '32', '0', '8', '4', '8')
    box = np.zeros(scene.shape, bool)
    box[4:8, 8:16, 20:32] = True
    assert sem.shape == scene.shape and sem.dtype == np.uint8
    assert np.array_equal(sem[~box], scene[~box])
    assert not np.array_equal(sem[box], scene[box])  # the box was regenerated
    (call, ) = spy
    # tokens: stride (2, 4, 4), halo 1: t cells 1..3, h cells 1..4, w cells 4..7 regenerated
    keep = torch.ones(4, 8, 8, dtype=torch.bool)
    keep[1:4, 1:5, 4:8] = False
    assert torch.equal(call['known_mask'][0, 0].cpu(), keep)
    assert call['known'].shape == (1, 16, 4, 8, 8) and 'trajectory' in call['cond']
    # outpainting along x and y: three windows, the scene kept at its offset
    spy.clear()
    sem = _run(tmp, OCCSORA, ckpt, 'outpaint', '--task', 'outpaint', '--input', npz,
               '--shift', '-8', '12')
    assert sem.shape == (T, X + 8, Y + 12, Z) and np.array_equal(sem[:, 8:, :Y], scene)
    assert len(spy) == 3 and all(not c['known_mask'].all() and c['known_mask'].any()
                                 for c in spy)


def test_occsora_continue_long_single_frame(setup, spy):
    scene, npz, tmp, ckpt = setup['scene'], setup['npz'], setup['tmp'], setup['ckpt']
    # continuation, default overlap = (1 + halo_t) * st = 4 frames = 2 token slices; with the
    # time halo slice 0 stays known
    sem = _run(tmp, OCCSORA, ckpt, 'continue', '--task', 'continue', '--input', npz,
               '--num-frames', '12')
    assert sem.shape == (12, X, Y, Z) and np.array_equal(sem[:T], scene)
    (call, ) = spy
    mask = call['known_mask'][0, 0].cpu()
    assert mask[0].all() and not mask[1:].any()
    assert 'hexplane' not in call['cond']
    # long sequences from scratch: 1 + 2 windows of stride 6 -> 20 frames
    spy.clear()
    sem = _run(tmp, OCCSORA, ckpt, 'long', '--task', 'long', '--num-frames', '20',
               '--overlap', '2', '--trajectory', 'straight')
    assert sem.shape == (20, X, Y, Z) and len(spy) == 3
    # single frame: frame 0 kept exactly; the token slice over frames 0-1 is known
    spy.clear()
    sem = _run(tmp, OCCSORA, ckpt, 'single', '--task', 'single-frame', '--input', npz)
    assert sem.shape == scene.shape and np.array_equal(sem[0], scene[0])
    mask = spy[0]['known_mask'][0, 0].cpu()
    assert mask[0].all() and not mask[1:].any()


def test_uniscene_inpaint_with_layout(setup, spy):
    import sample
    tmp, scene = setup['tmp'], setup['scene']
    ckpt = _checkpoint(UNISCENE, str(tmp / 'uniscene.pth'))
    layout = sample.layout_from_voxels(Config.fromfile(UNISCENE), scene)
    npz = str(tmp / 'scene_layout.npz')
    np.savez(npz, semantics=scene, layout=layout)
    sem = _run(tmp, UNISCENE, ckpt, 'uni_inpaint', '--task', 'inpaint', '--input', npz,
               '--region', '0', '12', '0', '32', '0', '8', '2', '5')
    box = np.zeros(scene.shape, bool)
    box[2:5, 0:12] = True
    assert sem.shape == scene.shape and np.array_equal(sem[~box], scene[~box])
    (call, ) = spy
    assert torch.equal(call['cond']['layout'][0].cpu(), torch.as_tensor(layout).float())
    # cells 1 x 2 x 2 voxels, halo (0, 1, 1): frames 2..4 (no time halo), h cells 0..6
    keep = torch.ones(8, 16, 16, dtype=torch.bool)
    keep[2:5, 0:7] = False
    assert torch.equal(call['known_mask'][0, 0].cpu(), keep)
