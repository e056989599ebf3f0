"""Generation applications end to end at tiny size: shapes, conditions reach the network,
given voxels kept exactly (inpainting, outpainting, continuation, long, single frame)."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from tiny_models import VOXELS, random_voxels, tiny_model_cfg  # noqa: E402

import occworld4d.diffusion  # noqa: E402,F401
from occworld4d.apis import OccGenerationInferencer  # noqa: E402
from occworld4d.apis import generation as G  # noqa: E402
from occworld4d.registry import MODELS  # noqa: E402

FAST = dict(sampler='ddim', num_steps=3)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = MODELS.build(tiny_model_cfg())
    for p in m.denoiser.parameters():  # leave adaLN-Zero's all-zero start: outputs vary
        if p.requires_grad:
            p.data.add_(0.05 * torch.randn_like(p))
    return m.eval()


def test_trajectory_presets_by_hand(tmp_path):
    s = G.trajectory_preset('straight', 4, speed=2.0)
    assert np.allclose(s, [[0, 0, 0], [2, 0, 0], [4, 0, 0], [6, 0, 0]])
    left, right = G.trajectory_preset('left', 4), G.trajectory_preset('right', 4)
    assert np.allclose(left[:, 1], -right[:, 1]) and (left[1:, 1] > 0).all()
    assert np.allclose(left[:, 2], [0, 0.08, 0.16, 0.24])
    # constant speed on the arc: consecutive points 1 m apart (chord ~ arc for small turns)
    assert np.allclose(np.linalg.norm(np.diff(left[:, :2], axis=0), axis=1), 1.0, atol=1e-3)
    assert np.allclose(G.trajectory_preset('stop', 4), 0)
    acc = G.trajectory_preset('accelerate', 4, speed=3.0)
    assert np.allclose(acc[:, 0], [0, 0.5, 2, 4.5])
    np.savetxt(tmp_path / 't.txt', s)
    assert np.allclose(G.load_trajectory(str(tmp_path / 't.txt'), 4), s)
    np.save(tmp_path / 't.npy', s[:3])
    with pytest.raises(ValueError, match=r'\(4, 3\)'):
        G.load_trajectory(str(tmp_path / 't.npy'), 4)
    with pytest.raises(ValueError, match='preset'):
        G.load_trajectory('zigzag', 4)
    assert G.parse_command('left') == 2 and G.parse_command('3') == 3


def test_conditions_change_the_sample(model):
    def run(**kw):
        return model.sample(1, cond=G._cond(model, 1, **kw), guidance_scale=4.0,
                            generator=torch.Generator().manual_seed(0), **FAST)
    a, b = run(command='LEFT'), run(command='RIGHT')
    assert not torch.allclose(a, b)
    t1, t2 = G.trajectory_preset('left', 4), G.trajectory_preset('straight', 4)
    assert not torch.allclose(run(trajectory=t1), run(trajectory=t2))
    out = G.generate(model, 2, layout=np.random.rand(4, 8, 8), **FAST)
    assert out.shape == (2, *VOXELS) and out.dtype == torch.uint8
    with pytest.raises(ValueError, match='condition'):
        G._cond(MODELS.build(tiny_model_cfg(denoiser=dict(
            tiny_model_cfg()['denoiser'], conditions=()))), 1, command=1)


def test_inpaint_keeps_outside_exactly(model):
    v = random_voxels(1, seed=1)[0]
    region = (2, 6, 0, 4, 0, 4, 0, 2)
    out = G.inpaint(model, v, region, num_samples=2, **FAST)
    box = G._box_mask(v.shape, region)
    assert out.shape == (2, *VOXELS)
    assert torch.equal(out[:, ~box], v[~box].to(torch.uint8).expand(2, -1))
    assert not torch.equal(out[:, box], v[box].to(torch.uint8).expand(2, -1))  # regenerated
    with pytest.raises(ValueError, match=r'region must be \(x0, x1, y0, y1, z0, z1'):
        G.inpaint(model, v, (0, 4, 0, 4), **FAST)  # too short: named, not an IndexError


def test_outpaint_stitches_and_keeps_the_scene(model):
    v = random_voxels(1, seed=2)[0]
    out = G.outpaint(model, v, (4, 0), free_label=0, **FAST)
    assert out.shape == (1, 4, 12, 8, 4)
    assert torch.equal(out[0, :, :8], v.to(torch.uint8))
    out = G.outpaint(model, v, (0, -2), **FAST)
    assert out.shape == (1, 4, 8, 10, 4)
    assert torch.equal(out[0, :, :, 2:], v.to(torch.uint8))
    with pytest.raises(ValueError, match='shift'):
        G.outpaint(model, v, (0, 0))
    with pytest.raises(ValueError, match=r'generates windows of \(T, X, Y, Z\) = \(4, 8, 8, 4\)'):
        G.outpaint(model, v[:, :6], (2, 0))


@pytest.mark.parametrize('shift', [(3, 2), (-2, 3), (2, -3), (-3, -2)])
def test_outpaint_both_shifts_generates_the_whole_canvas(model, monkeypatch, shift):
    """Three windows (x, y, diagonal): window k decodes to class k (0, 1, 2) by a stub, so the
    output shows which window wrote each voxel: the given scene is exact, each strip comes from
    its window, the far corner from the diagonal one, and later windows keep earlier output."""
    v = random_voxels(1, seed=6)[0]
    calls, knowns = [], []
    sample = model.sample

    def spy(*args, known=None, **kwargs):
        knowns.append(known)
        return sample(*args, known=known, **kwargs)

    def stub_decode(x0):  # logits (N, K, T, X, Y, Z) voting for class len(calls)
        logits = torch.zeros(x0.shape[0], 3, *VOXELS)
        logits[:, len(calls)] = 1.0
        calls.append(1)
        return logits

    monkeypatch.setattr(model, 'sample', spy)
    monkeypatch.setattr(model, 'decode_latent', stub_decode)
    dx, dy = shift
    out = G.outpaint(model, v, shift, num_samples=2, **FAST)
    assert out.shape == (2, 4, 8 + abs(dx), 8 + abs(dy), 4) and len(calls) == 3
    ox, oy = max(-dx, 0), max(-dy, 0)
    assert torch.equal(out[:, :, ox:ox + 8, oy:oy + 8], v.to(torch.uint8).expand(2, -1, -1, -1, -1))
    xs_new = slice(8, None) if dx > 0 else slice(0, -dx)  # columns only the x window covers
    ys_new = slice(8, None) if dy > 0 else slice(0, -dy)
    ys_old, xs_old = slice(oy, oy + 8), slice(ox, ox + 8)
    assert (out[:, :, xs_new, ys_old] == 0).all()  # window 1: shift (dx, 0)
    assert (out[:, :, xs_old, ys_new] == 1).all()  # window 2: shift (0, dy)
    assert (out[:, :, xs_new, ys_new] == 2).all()  # window 3: the far corner
    # The diagonal window saw the first two windows' voxels as known (encoded from them).
    win = out[:, :, ox + dx:ox + dx + 8, oy + dy:oy + dy + 8].clone()
    win[:, :, (slice(8 - dx, None) if dx > 0 else slice(0, -dx)),
        (slice(8 - dy, None) if dy > 0 else slice(0, -dy))] = 0  # free_label before generation
    assert torch.allclose(knowns[2], model.encode_latent(win.long()))


def test_outpaint_passes_conditions(model, monkeypatch):
    v = random_voxels(1, seed=8)[0]
    seen = []
    sample = model.sample

    def spy(*args, cond=None, **kwargs):
        seen.append(cond)
        return sample(*args, cond=cond, **kwargs)

    monkeypatch.setattr(model, 'sample', spy)
    cond = G._cond(model, 2, command='LEFT', trajectory=G.trajectory_preset('left', 4))
    G.outpaint(model, v, (2, 2), num_samples=2, cond=cond, **FAST)
    assert len(seen) == 3 and all(c is cond for c in seen)
    inf = OccGenerationInferencer(model, free_label=0)
    seen.clear()
    inf('outpaint', voxels=v.numpy(), shift=(0, 2), command='RIGHT', trajectory='stop', seed=0,
        **FAST)
    assert torch.equal(seen[0]['command'], torch.tensor([3]))
    assert torch.equal(seen[0]['trajectory'], torch.zeros(1, 4, 3))


def test_continue_long_and_single_frame_keep_given_voxels(model):
    v = random_voxels(1, seed=3)[0]
    cont = G.continue_scene(model, v, overlap=2, **FAST)
    assert cont.shape == (1, 6, 8, 8, 4)
    assert torch.equal(cont[0, :4], v.to(torch.uint8))
    long = G.generate_long(model, 11, overlap=2, command='FORWARD', **FAST)
    assert long.shape == (1, 11, 8, 8, 4)
    no_overlap = G.generate_long(model, 9, first_window=v, overlap=0, **FAST)
    assert no_overlap.shape == (1, 9, 8, 8, 4) and torch.equal(no_overlap[0, :4], v.to(torch.uint8))
    sf = G.single_frame(model, v[0], num_samples=2, **FAST)
    assert sf.shape == (2, *VOXELS)
    assert torch.equal(sf[:, 0], v[0].to(torch.uint8).expand(2, -1, -1, -1))
    with pytest.raises(ValueError, match='overlap'):
        G.generate_long(model, 8, first_window=v, overlap=4)


def test_inferencer_runs_every_task_and_saves(model, tmp_path):
    inf = OccGenerationInferencer(model, free_label=0)
    v = random_voxels(1, seed=4)[0].numpy().astype(np.uint8)
    kw = dict(seed=0, **FAST)
    cases = dict(uncond={}, command=dict(command='LEFT'), trajectory=dict(trajectory='right'),
                 layout=dict(layout=np.random.rand(4, 8, 8)),
                 long=dict(num_frames=10, overlap=2), continue_=dict(voxels=v, overlap=2),
                 inpaint=dict(voxels=v, region=(0, 4, 0, 4, 0, 2)),
                 outpaint=dict(voxels=v, shift=(2, 0)), single=dict(voxels=v))
    names = dict(continue_='continue', single='single-frame')
    for key, extra in cases.items():
        res = inf(names.get(key, key), **extra, **kw)
        assert res['semantics'].dtype == np.uint8 and res['semantics'].ndim == 5, key
    a = inf('command', command=1, **kw)['semantics']
    assert np.array_equal(a, inf('command', command=1, **kw)['semantics'])  # seeded
    paths = inf.save(res, str(tmp_path / 'out'))
    npz = np.load(paths[0])
    assert np.array_equal(npz['semantics'], res['semantics'][0])
    assert any(p.endswith('.gif') for p in paths) and all(osp.isfile(p) for p in paths)
    with pytest.raises(ValueError, match='needs input voxels'):
        inf('inpaint', region=(0, 1, 0, 1, 0, 1))
    with pytest.raises(ValueError, match='unknown task'):
        inf('dream')


def test_inferencer_passes_conditions_to_inpaint_and_single_frame(model, monkeypatch):
    inf = OccGenerationInferencer(model, free_label=0)
    v = random_voxels(1, seed=5)[0].numpy().astype(np.uint8)
    seen = []
    sample = model.sample

    def spy(*args, cond=None, **kwargs):
        seen.append(dict(cond or {}))
        return sample(*args, cond=cond, **kwargs)

    monkeypatch.setattr(model, 'sample', spy)
    for task, extra in (('inpaint', dict(region=(0, 4, 0, 4, 0, 2))), ('single-frame', {}),
                        ('outpaint', dict(shift=(2, 2)))):
        seen.clear()
        inf(task, voxels=v, seed=0, command='LEFT', trajectory='right', num_samples=2,
            **extra, **FAST)
        cond = seen[-1]
        assert torch.equal(cond['command'], torch.tensor([2, 2])), task
        assert cond['trajectory'].shape == (2, 4, 3), task
        assert np.allclose(cond['trajectory'][0].numpy(), G.trajectory_preset('right', 4))
