"""Classifier-free guidance, inpainting / RePaint and padding masks of the sampling loop."""
import pytest
import torch

from occworld4d.diffusion import (SAMPLERS, ClassifierFreeGuidance, GaussianDiffusion,
                                  repaint_moves)
from occworld4d.diffusion.analytic import GaussianDataDenoiser

MEAN = torch.tensor([0.5, -1.0])
COV = torch.tensor([[1.0, 0.3], [0.3, 0.4]])


def _manual_cfg(model, scale):
    """Guidance done by hand: two separate calls, eps_u + s (eps_c - eps_u)."""

    def guided(x, t, mu, drop=None):
        batch = x.shape[0]
        cond = model(x, t, mu=mu, drop={'mu': torch.zeros(batch, dtype=torch.bool)})
        uncond = model(x, t, mu=mu, drop={'mu': torch.ones(batch, dtype=torch.bool)})
        return uncond + scale * (cond - uncond)

    return guided


@pytest.mark.parametrize('sampler', list(SAMPLERS))
def test_cfg_equals_the_manual_combination(sampler):
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN, COV)
    mu = torch.tensor([[2.0, 1.0]]).expand(64, 2)  # the condition: a shifted data mean
    gen_args = dict(num_steps=20, dtype=torch.float64, cond=dict(mu=mu))
    model.record = True
    batched = engine.sample(model, (64, 2), sampler=sampler, guidance_scale=3.0,
                            generator=torch.Generator().manual_seed(0), **gen_args)
    # ONE batched forward per step, on [cond; uncond] with drop = [zeros; ones]
    assert model.calls == 20
    first = model.seen[0]
    assert first['t'].shape == (128, ) and torch.equal(first['t'][:64], first['t'][64:])
    assert torch.equal(first['drop']['mu'], torch.cat([torch.zeros(64), torch.ones(64)]).bool())
    assert torch.equal(first['mu'], torch.cat([mu, mu]))
    manual = engine.sample(_manual_cfg(model, 3.0), (64, 2), sampler=sampler,
                           generator=torch.Generator().manual_seed(0), **gen_args)
    torch.testing.assert_close(batched, manual)
    # on Gaussians with a shared covariance, guidance moves the mean to mu_u + s (mu_c - mu_u)
    expected = MEAN + 3.0 * (mu[0] - MEAN)  # (5, 5)
    assert (batched.mean(0).float() - expected).norm() < 0.4


def test_cfg_exact_on_gaussians_for_deterministic_ddim():
    """For Gaussian data with equal covariance, eps_u + s (eps_c - eps_u) is the exact
    denoiser of N(mu_u + s (mu_c - mu_u), Sigma): guided DDIM == DDIM of that Gaussian."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN, COV)
    mu = torch.tensor([[2.0, 1.0]]).expand(32, 2)
    x_T = torch.randn(32, 2, dtype=torch.float64)
    guided = engine.sample(model, (32, 2), cond=dict(mu=mu), sampler='ddim', num_steps=25,
                           guidance_scale=2.5, x_T=x_T, dtype=torch.float64)
    shifted = GaussianDataDenoiser(engine.schedule, MEAN + 2.5 * (mu[0] - MEAN), COV)
    target = engine.sample(shifted, (32, 2), sampler='ddim', num_steps=25, x_T=x_T,
                           dtype=torch.float64)
    torch.testing.assert_close(guided, target)


def test_cfg_keys_user_drop_and_learned_variance_channels():
    calls = []

    def model(x, t, a, b, drop=None):
        calls.append(dict(a=a, b=b, drop=drop))
        batch = x.shape[0]
        pred = torch.arange(batch, dtype=x.dtype)[:, None].expand_as(x)  # row index
        return torch.cat([pred, pred + 100], dim=1)  # (2B, 2C): variance = index + 100

    a, b = torch.ones(3, 4), torch.zeros(3)
    user = torch.tensor([True, False, False])
    cfg = ClassifierFreeGuidance(model, dict(a=a, b=b, drop=dict(b=user)), scale=2.0,
                                 keys=['a'])
    out = cfg(torch.zeros(3, 2), torch.tensor([5, 5, 5]))
    drop = calls[0]['drop']
    assert set(drop) == {'a', 'b'}
    assert drop['a'].tolist() == [False] * 3 + [True] * 3
    assert drop['b'].tolist() == [True, False, False] * 2  # the caller's drop, duplicated
    # prediction: u + 2 (c - u) with c = i, u = i + 3 -> i - 3; variance from the cond half
    torch.testing.assert_close(out[:, :2], (torch.arange(3.0) - 3)[:, None].expand(3, 2))
    torch.testing.assert_close(out[:, 2:], (torch.arange(3.0) + 100)[:, None].expand(3, 2))
    with pytest.raises(ValueError, match='guidance_keys'):
        ClassifierFreeGuidance(model, dict(a=a), scale=2.0, keys=['c'])
    with pytest.raises(ValueError, match='guidance_keys'):
        ClassifierFreeGuidance(model, {}, scale=2.0)


def test_repaint_moves_by_hand():
    assert repaint_moves(3) == [('down', 2, 1), ('down', 1, 0), ('down', 0, -1)]
    assert repaint_moves(4, jump_length=2, jump_n_sample=2) == [
        ('down', 3, 2), ('down', 2, 1), ('up', 1, 3), ('down', 3, 2), ('down', 2, 1),
        ('down', 1, 0), ('down', 0, -1)]
    moves = repaint_moves(10, jump_length=1, jump_n_sample=3)
    assert sum(m[0] == 'down' for m in moves) == 10 + 2 * 9
    assert sum(m[0] == 'up' for m in moves) == 2 * 9


@pytest.mark.parametrize('jumps', [1, 3])
@pytest.mark.parametrize('sampler', list(SAMPLERS))
def test_inpainting_keeps_the_known_region_exactly(sampler, jumps):
    engine = GaussianDiffusion()
    calls = []

    def model(x, t):  # a 3-D latent (B, C, X, Y): predicts eps = 0.1 x
        calls.append(t[0].item())
        return 0.1 * x

    known = torch.randn(2, 3, 5, 6)
    known_mask = torch.zeros(1, 1, 5, 6, dtype=torch.bool)
    known_mask[..., :, :3] = True  # outpainting: keep the left half, extend to the right
    x = engine.sample(model, known.shape, sampler=sampler, num_steps=8, known=known,
                      known_mask=known_mask, resample_jumps=jumps, resample_steps=2,
                      generator=torch.Generator().manual_seed(0))
    mask = known_mask.expand_as(known)
    assert torch.equal(x[mask], known[mask])
    assert not torch.allclose(x[~mask], known[~mask], atol=0.1)
    assert len(calls) == 8 + (jumps - 1) * 2 * 3  # 3 resampled blocks of 2 steps


def test_known_region_is_forward_noised_at_the_current_level():
    engine = GaussianDiffusion()
    seen = []

    def model(x, t):
        seen.append((x.clone(), int(t[0])))
        return torch.zeros_like(x)

    known = torch.full((20000, 2), 3.0)
    engine.sample(model, known.shape, sampler='ddim', num_steps=5, known=known,
                  known_mask=torch.tensor([True, False]),
                  generator=torch.Generator().manual_seed(1))
    for x, t in seen:  # known coordinate ~ N(a_t 3, 1 - abar_t) at each model call
        a = engine.schedule.sqrt_alphas_cumprod[t].item()
        assert x[:, 0].mean().item() == pytest.approx(3 * a, abs=0.03)
        assert x[:, 0].var().item() == pytest.approx(1 - a**2, abs=0.03)


def test_repaint_resampling_makes_the_fill_coherent():
    """x = (x1, x2) ~ N(0, [[1, .9], [.9, 1]]); keep x1 = 1.5: the exact fill is
    x2 ~ N(1.35, 0.19). Plain replacement is biased; RePaint resampling fixes it."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, torch.zeros(2),
                                 torch.tensor([[1.0, 0.9], [0.9, 1.0]]))
    known = torch.zeros(2000, 2)
    known[:, 0] = 1.5
    args = dict(sampler='ddpm', num_steps=50, known=known, known_mask=torch.tensor([True,
                                                                                   False]))
    plain = engine.sample(model, known.shape, generator=torch.Generator().manual_seed(0), **args)
    repaint = engine.sample(model, known.shape, resample_jumps=10, resample_steps=1,
                            generator=torch.Generator().manual_seed(0), **args)
    assert torch.all(plain[:, 0] == 1.5) and torch.all(repaint[:, 0] == 1.5)
    assert abs(plain[:, 1].mean().item() - 1.35) > 0.3
    assert abs(repaint[:, 1].mean().item() - 1.35) < 0.1
    assert abs(repaint[:, 1].var().item() - 0.19) < 0.05


def test_valid_mask_keeps_padding_at_zero():
    engine = GaussianDiffusion()
    valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    valid[..., 3, :] = False  # a padded row
    inputs = []

    def model(x, t):
        inputs.append(x.clone())
        return 0.5 * x + 1.0  # would fill the padding if it were not masked

    for sampler in SAMPLERS:
        x = engine.sample(model, (2, 3, 4, 4), sampler=sampler, num_steps=6, valid_mask=valid,
                          generator=torch.Generator().manual_seed(0))
        assert torch.all(x[..., 3, :] == 0) and torch.all(x[..., :3, :] != 0)
    assert all(torch.all(x[..., 3, :] == 0) for x in inputs)
    with pytest.raises(ValueError, match='valid_mask of shape'):
        engine.sample(model, (2, 3, 4, 4), valid_mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match='known and known_mask go together'):
        engine.sample(model, (2, 3, 4, 4), known=torch.zeros(2, 3, 4, 4))
