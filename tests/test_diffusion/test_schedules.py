"""Beta schedules, respacing and the derived per-step coefficients, against closed forms."""
import math

import numpy as np
import pytest
import torch

from occworld4d.diffusion import GaussianDiffusion, NoiseSchedule, make_betas, space_timesteps
from occworld4d.diffusion.schedules import LOGSNR_MIN


def test_linear_schedule_is_ddpm_default():
    betas = make_betas('linear', 1000)
    assert betas.shape == (1000, )
    assert betas[0] == pytest.approx(1e-4, abs=1e-15)
    assert betas[-1] == pytest.approx(0.02, abs=1e-15)
    assert betas[500] == pytest.approx(1e-4 + 500 * (0.02 - 1e-4) / 999, rel=1e-12)
    engine = GaussianDiffusion()
    np.testing.assert_allclose(engine.schedule.betas.numpy(), betas, rtol=1e-10)
    # abar_999 of the DDPM schedule: prod (1 - beta) = 4.04e-5 (the well-known value)
    assert engine.schedule.alphas_cumprod[-1].item() == pytest.approx(
        float(np.prod(1 - betas)), rel=1e-12)
    assert 4.0e-5 < engine.schedule.alphas_cumprod[-1].item() < 4.1e-5


def test_scaled_linear_and_cosine_closed_forms():
    betas = make_betas('scaled_linear', 10, 0.01, 0.09)
    np.testing.assert_allclose(np.sqrt(betas), np.linspace(0.1, 0.3, 10), rtol=1e-12)
    n, s = 100, 0.008
    abar = np.cumprod(1 - make_betas('cosine', n))

    def f(u):
        return math.cos((u + s) / (1 + s) * math.pi / 2)**2

    expected = np.array([f((i + 1) / n) / f(0) for i in range(n)])
    # identical until the 0.999 clip at the very last step
    np.testing.assert_allclose(abar[:-1], expected[:-1], rtol=1e-10)


def test_bad_schedule_names_fail_clearly():
    with pytest.raises(ValueError, match='unknown beta schedule'):
        make_betas('quadratic', 10)
    with pytest.raises(ValueError, match='prediction_type'):
        GaussianDiffusion(prediction_type='score')
    with pytest.raises(ValueError, match='learn_sigma=True needs loss_type="hybrid"'):
        GaussianDiffusion(learn_sigma=True, loss_type='mse')
    with pytest.raises(ValueError, match='cannot parse'):
        GaussianDiffusion(timestep_respacing='fast')
    for bad in ('ddimfast', 'ddim', '10,x', '10,,5'):
        with pytest.raises(ValueError, match=r"cannot parse .*'" + bad + "'"):
            space_timesteps(1000, bad)


def test_space_timesteps_rules():
    np.testing.assert_array_equal(space_timesteps(1000, 'ddim50'), np.arange(0, 1000, 20))
    kept = space_timesteps(1000, 20)
    assert kept.size == 20 and kept[0] == 0 and kept[-1] == 999
    np.testing.assert_array_equal(space_timesteps(1000, '20'), kept)
    np.testing.assert_array_equal(space_timesteps(10, 4), [0, 3, 6, 9])
    # sections: [0, 5) gets 2 steps (0, 4), [5, 10) gets 3 steps (5, 7, 9)
    np.testing.assert_array_equal(space_timesteps(10, '2,3'), [0, 4, 5, 7, 9])
    np.testing.assert_array_equal(space_timesteps(10, [7, 2, 2]), [2, 7])
    # quadratic: t_k = round((k / 4)^2 * 999) for 5 steps
    np.testing.assert_array_equal(space_timesteps(1000, 'quad5'), [0, 62, 250, 562, 999])
    np.testing.assert_array_equal(space_timesteps(1000, 'cubic5'), [0, 16, 125, 421, 999])
    # rounding collisions are bumped apart: 20 cubic steps stay 20 distinct indices
    np.testing.assert_array_equal(space_timesteps(1000, 'cubic20')[:3], [0, 1, 2])
    abar = GaussianDiffusion().schedule.alphas_cumprod.numpy()
    for spec, count in (('quad50', 50), ('cubic200', 200), ('logsnr50', 50),
                        ('logsnr200', 200), ('ddim250', 250), (100, 100)):
        kept = space_timesteps(1000, spec, abar)
        assert np.all(np.diff(kept) > 0) and kept.size == count
    lam = 0.5 * np.log(abar / (1 - abar))
    kept = space_timesteps(1000, 'logsnr20', abar)
    # the top step (the sampler's start) and 19 steps uniform in lambda over
    # [LOGSNR_MIN, lambda_0] up to index rounding (lambda_999 = -5.06 < LOGSNR_MIN = -4)
    assert kept[-1] == 999 and kept[0] == 0 and kept.size == 20
    assert lam[kept[-2]] == pytest.approx(LOGSNR_MIN, abs=0.02)
    steps = np.diff(lam[kept[:-1]])
    assert steps.std() / abs(steps.mean()) < 0.15
    # a chain that stays above LOGSNR_MIN is uniform over its whole lambda range
    high = np.cumprod(1 - make_betas('linear', 1000, 1e-4, 0.005))  # lambda 4.6 .. -1.3
    lam_high = 0.5 * np.log(high / (1 - high))
    assert lam_high[-1] > LOGSNR_MIN
    steps = np.diff(lam_high[space_timesteps(1000, 'logsnr10', high)])
    assert steps.std() / abs(steps.mean()) < 0.15
    # leading / trailing / linspace (diffusers' conventions)
    np.testing.assert_array_equal(space_timesteps(1000, 'leading4'), [0, 250, 500, 750])
    np.testing.assert_array_equal(space_timesteps(1000, 'trailing4'), [249, 499, 749, 999])
    np.testing.assert_array_equal(space_timesteps(1000, 'linspace4'), space_timesteps(1000, 4))
    for spec in ('leading', 'trailing', 'linspace', 'quad', 'cubic', 'logsnr'):
        np.testing.assert_array_equal(space_timesteps(1000, f'{spec}1000', abar),
                                      np.arange(1000))
    with pytest.raises(ValueError, match='trailing'):
        space_timesteps(1000, 'trail20')
    with pytest.raises(ValueError, match='step count'):
        space_timesteps(10, 11)


@pytest.mark.parametrize('spacing', ['ddim50', 25, 'quad20', 'logsnr20', '10,15,20', [0, 999]])
def test_respaced_chain_reproduces_original_alphas_cumprod(spacing):
    engine = GaussianDiffusion()
    kept = engine.timesteps_for(spacing)
    chain = engine.schedule_for(spacing)
    full = engine.schedule.alphas_cumprod
    torch.testing.assert_close(chain.timesteps, kept)
    # the respaced betas, compounded, give back abar at exactly the kept steps
    torch.testing.assert_close(torch.cumprod(1 - chain.betas, 0), full[kept], rtol=1e-12,
                               atol=0)
    torch.testing.assert_close(chain.betas[1:], 1 - full[kept[1:]] / full[kept[:-1]])
    assert chain.betas[0] == pytest.approx(1 - full[kept[0]].item(), rel=1e-12)


def test_posterior_coefficients_match_bayes_rule():
    """q(x_{t-1} | x_t, x0) from Bayes: precision alpha_t / beta_t + 1 / (1 - abar_{t-1}),
    mean var * (sqrt(alpha_t) x_t / beta_t + sqrt(abar_{t-1}) x0 / (1 - abar_{t-1}))."""
    chain = NoiseSchedule.from_betas(make_betas('linear', 50, 1e-3, 0.2))
    abar = chain.alphas_cumprod
    for t in range(1, 50):
        beta = 1 - abar[t] / abar[t - 1]
        alpha = 1 - beta
        var = 1 / (alpha / beta + 1 / (1 - abar[t - 1]))
        assert chain.posterior_variance[t].item() == pytest.approx(var.item(), rel=1e-10)
        coef_xt = var * alpha.sqrt() / beta
        coef_x0 = var * abar[t - 1].sqrt() / (1 - abar[t - 1])
        assert chain.posterior_mean_coef2[t].item() == pytest.approx(coef_xt.item(), rel=1e-10)
        assert chain.posterior_mean_coef1[t].item() == pytest.approx(coef_x0.item(), rel=1e-10)
    # t = 0: the posterior is a point mass at x0
    assert chain.posterior_variance[0].item() == 0
    assert chain.posterior_mean_coef1[0].item() == pytest.approx(1.0, rel=1e-12)
    assert chain.posterior_mean_coef2[0].item() == 0
    assert chain.posterior_log_variance_clipped[0] == chain.posterior_log_variance_clipped[1]
