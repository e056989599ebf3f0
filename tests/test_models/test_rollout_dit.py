"""RolloutDiT: parameter count at the reference size, padding drop, per-condition null drop,
forward/backward and a short overfit at tiny size."""
import pytest
import torch

from occworld4d.models.denoisers import DIT_PRESETS, RolloutDiT
from occworld4d.registry import MODELS

TINY = dict(hex_shape=(2, 4, 4, 2), in_channels=3, arch='DiT-tiny', patch_size=2,
            num_frames=4)  # canvas 8 x 8, 16 patches, 13 kept


def tiny(**kw):
    return RolloutDiT(**{**TINY, **kw})


def conds(B, S=8, C=3, T=4):
    return dict(trajectory=torch.randn(B, T, 3), command=torch.randint(0, 4, (B,)),
                layout=torch.rand(B, T, 6, 6), hexplane=torch.randn(B, C, S, S))


def test_param_count_matches_reference():
    # Reference DynamicCity default (CarlaSC, DiT-DC/2, condition flags off): 43,730,432,
    # of which 554,496 = 1444 x 384 frozen sin-cos positions.
    m = MODELS.build(dict(type='RolloutDiT', hex_shape=(8, 64, 64, 4), in_channels=16,
                          arch='DiT-DC/2', conditions=()))
    assert sum(p.numel() for p in m.parameters()) == 43_730_432
    frozen = [p for p in m.parameters() if not p.requires_grad]
    assert len(frozen) == 1 and frozen[0].numel() == 554_496 == 1444 * 384
    # All four condition embedders (+ their null embeddings): within 1 % of the reference.
    full = RolloutDiT((8, 64, 64, 4), in_channels=16)
    n = sum(p.numel() for p in full.parameters())
    assert n == 43_730_432 + 314_496 + 1_536 + 2 * 24_960 + 4 * 384
    assert abs(n / 43_730_432 - 1) < 0.01
    assert full.num_tokens == 1416
    assert DIT_PRESETS['DiT-DC/1'] == (18, 768, 12, 2)


def test_forward_backward_and_zero_init():
    m = tiny()
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    t = torch.tensor([3, 700])
    out = m(x, t, **conds(2))
    assert out.shape == (2, 6, 8, 8)
    # adaLN-Zero: the untrained network outputs exactly zero.
    assert torch.count_nonzero(out) == 0
    # After perturbing the zero-initialised layers, gradients reach input and embedders.
    for p in m.parameters():
        if p.requires_grad:
            p.data.add_(0.05 * torch.randn_like(p))
    out = m(x, t, **conds(2))
    out.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name in ('trajectory', 'command', 'layout', 'hexplane'):
        g = [p.grad for p in m.cond_embedders[name].parameters()]
        assert all(gi is not None and gi.abs().sum() > 0 for gi in g), name
    assert m.pos_embed.grad is None


def perturbed(**kw):
    torch.manual_seed(1)
    m = tiny(**kw)
    for p in m.parameters():
        if p.requires_grad:
            p.data.add_(0.1 * torch.randn_like(p))
    return m.eval()


def test_padded_tokens_are_dropped():
    m = perturbed()
    assert m.num_tokens == 13  # 16 patches; the T'xT' and Z'x(Z'+T') corners are padding
    valid = m.rollout.valid_mask()
    keep_cells = m.rollout.patch_mask(2).view(4, 4).repeat_interleave(2, 0).repeat_interleave(2, 1)
    x = torch.randn(1, 3, 8, 8)
    c = conds(1)
    x2 = x.clone()
    x2[:, :, ~valid] = 100 * torch.randn_like(x2[:, :, ~valid])
    c2 = dict(c, hexplane=c['hexplane'].clone())
    c2['hexplane'][:, :, ~valid] = 50.0
    t = torch.tensor([10])
    with torch.no_grad():
        a, b = m(x, t, **c), m(x2, t, **c2)
    # In this shape every kept patch is fully valid, so the padding is exactly the dropped
    # patches: output zero there, and the output elsewhere ignores the padded input.
    assert torch.equal(keep_cells, valid)
    assert torch.count_nonzero(a[:, :, ~keep_cells]) == 0
    assert torch.allclose(a, b, atol=1e-6)
    # Without dropping, the padding would leak into the output.
    m2 = perturbed(drop_padding=False)
    with torch.no_grad():
        assert not torch.allclose(m2(x, t, **c), m2(x2, t, **c2), atol=1e-3)


@pytest.mark.parametrize('name', ['trajectory', 'command', 'layout', 'hexplane'])
def test_drop_replaces_condition_with_null(name):
    m = perturbed()
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([5, 5])
    c1, c2 = conds(2), conds(2)
    c2 = dict(c1, **{name: c2[name]})  # differ only in `name`
    if name == 'command':
        c2['command'] = (c1['command'] + 1) % 4
    drop = {name: torch.tensor([True, False])}
    with torch.no_grad():
        a, b = m(x, t, drop=drop, **c1), m(x, t, drop=drop, **c2)
        missing = {k: v for k, v in c1.items() if k != name}
        u = m(x, t, **missing)
    assert torch.allclose(a[0], b[0], atol=1e-6)        # dropped: independent of the value
    assert not torch.allclose(a[1], b[1], atol=1e-4)    # kept: depends on it
    assert torch.allclose(a[0], u[0], atol=1e-6)        # a missing condition == dropped


def test_bad_inputs():
    m = tiny()
    with pytest.raises(ValueError, match=r'\(B, 3, 8, 8\)'):
        m(torch.randn(1, 3, 6, 6), torch.tensor([1]))
    with pytest.raises(TypeError, match='traj'):
        m(torch.randn(1, 3, 8, 8), torch.tensor([1]), traj=torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match='trajectory'):
        m(torch.randn(1, 3, 8, 8), torch.tensor([1]), trajectory=torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match=r'command ids span \[0, 4\]'):  # 4 commands: 0..3
        m(torch.randn(2, 3, 8, 8), torch.tensor([1, 1]), command=torch.tensor([0, 4]))
    with pytest.raises(KeyError, match='presets'):
        tiny(arch='DiT-huge')
    # A known condition the model was built without is an error, not silently ignored.
    with pytest.raises(ValueError, match=r"\['trajectory'\] that this model does not embed"):
        tiny(conditions=('command',))(torch.randn(1, 3, 8, 8), torch.tensor([1]),
                                      command=torch.tensor([1]), trajectory=torch.zeros(1, 4, 3))


def test_overfits_one_target():
    torch.manual_seed(0)
    m = tiny(learn_sigma=False)
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    target = torch.randn(2, 3, 8, 8) * m.rollout.valid_mask()
    c = conds(2)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(60):
        loss = (m(x, t, **c) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_param_count_of_the_carlasc_config():
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'dynamiccity',
                                   'dynamiccity_dit_8xb16-1200e_carlasc.py'))
    den = cfg.model.denoiser.copy()
    full = MODELS.build(den)
    den['conditions'] = ()
    bare = MODELS.build(den)
    assert sum(p.numel() for p in bare.parameters()) == 43_730_432
    assert abs(sum(p.numel() for p in full.parameters()) / 43_730_432 - 1) < 0.01
