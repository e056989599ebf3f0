"""Samplers driven by the exact denoiser of N(mu, Sigma) data must recover mu and Sigma."""
import math

import pytest
import torch

from occworld4d.diffusion import SAMPLERS, DPMSolverPP3MStep, GaussianDiffusion, Level
from occworld4d.registry import DIFFUSION
from occworld4d.diffusion.analytic import (GaussianDataDenoiser, gaussian_distances,
                                           sampler_law_w2)

MEAN_2D = torch.tensor([1.0, -0.5])
COV_2D = torch.tensor([[1.0, 0.6], [0.6, 0.5]])
_A = torch.tensor([[1.0, 0.3, 0.0, 0.0], [0.2, 0.7, 0.1, 0.0], [0.0, 0.4, 0.5, 0.2],
                   [0.1, 0.0, 0.3, 0.3]])
MEAN_4D = torch.tensor([1.0, -0.5, 0.3, 2.0])
COV_4D = _A @ _A.T + 0.05 * torch.eye(4)  # eigenvalues 0.06 .. 1.46
SAMPLER_NAMES = list(SAMPLERS)  # ddpm, ddim, dpmpp_2m, dpmpp_3m, unipc


def test_analytic_denoiser_is_the_mmse_predictor():
    """E[eps | x_t] by Monte Carlo regression equals the closed form (and x0, v agree)."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    gen = torch.Generator().manual_seed(123)  # not 0: the global RNG (seed 0) draws x0
    x0 = torch.distributions.MultivariateNormal(MEAN_2D.double(), COV_2D.double()).sample(
        (100000, ))
    t = torch.full((100000, ), 400)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    x_t = engine.q_sample(x0, t, eps)
    # least squares eps ~ [x_t, 1] W recovers the affine MMSE map
    design = torch.cat([x_t, torch.ones(100000, 1, dtype=torch.float64)], dim=1)
    weights = torch.linalg.lstsq(design, eps).solution
    fitted = design[:8] @ weights
    torch.testing.assert_close(fitted, model(x_t[:8], t[:8]), atol=0.02, rtol=0)
    x0_model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D, prediction_type='x0')
    torch.testing.assert_close(engine.predict_x0_from_eps(x_t[:8], t[:8], model(x_t[:8], t[:8])),
                               x0_model(x_t[:8], t[:8]))


@pytest.mark.parametrize('mean,cov', [(MEAN_2D, COV_2D), (MEAN_4D, COV_4D)], ids=['2d', '4d'])
@pytest.mark.parametrize('sampler,steps,calls,cov_tol', [('ddpm', 250, 250, 0.1),
                                                         ('ddim', 50, 50, 0.13),
                                                         ('dpmpp_2m', 20, 20, 0.1),
                                                         ('dpmpp_3m', 20, 20, 0.1),
                                                         ('unipc', 20, 20, 0.1)])
def test_sampler_recovers_gaussian(mean, cov, sampler, steps, calls, cov_tol):
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, mean, cov)
    x = engine.sample(model, (4000, mean.numel()), sampler=sampler, num_steps=steps,
                      generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert model.calls == calls
    dist = gaussian_distances(x, mean, cov)
    # exact samples of this size give mean_err ~0.02, cov_rel ~0.03, w2 ~0.03; DDIM (a
    # first-order solver) keeps a discretisation error of cov_rel ~0.07-0.10 at 50 steps
    assert dist['mean_err'] < 0.06, dist
    assert dist['cov_rel'] < cov_tol, dist
    assert dist['w2'] < 0.09, dist


def test_ddpm_full_chain_1000_steps():
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    x = engine.sample(model, (2000, 2), sampler='ddpm', generator=torch.Generator().manual_seed(2),
                      dtype=torch.float64)
    assert model.calls == 1000
    dist = gaussian_distances(x, MEAN_2D, COV_2D)
    assert dist['mean_err'] < 0.08 and dist['cov_rel'] < 0.12, dist


def test_dpmpp_is_second_order_and_ddim_first_order():
    """Without sampling noise (same x_T, deterministic ODE solvers), the distance to a
    1000-step reference shrinks ~4x for DPM-Solver++ and ~2x for DDIM when steps double."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D)
    x_T = torch.randn(512, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def run(sampler, steps):
        return engine.sample(model, x_T.shape, sampler=sampler, num_steps=steps, x_T=x_T,
                             dtype=torch.float64)

    ref = run('dpmpp_2m', 'quad1000')

    def err(sampler, steps):
        return (run(sampler, steps) - ref).norm(dim=1).mean().item()

    ratio_dpm = err('dpmpp_2m', 'quad10') / err('dpmpp_2m', 'quad20')
    ratio_ddim = err('ddim', 'quad10') / err('ddim', 'quad20')
    assert ratio_dpm > 3.0, ratio_dpm
    assert 1.5 < ratio_ddim < 3.0, ratio_ddim


def test_prediction_types_give_the_same_samples():
    engine_eps = GaussianDiffusion(prediction_type='eps')
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    results = []
    for kind in ('eps', 'x0', 'v'):
        engine = GaussianDiffusion(prediction_type=kind)
        model = GaussianDataDenoiser(engine_eps.schedule, MEAN_2D, COV_2D, prediction_type=kind)
        for sampler in SAMPLERS:
            results.append(engine.sample(model, x_T.shape, sampler=sampler, num_steps=25,
                                         x_T=x_T, generator=torch.Generator().manual_seed(5),
                                         dtype=torch.float64))
    count = len(SAMPLERS)
    for i in range(count):
        torch.testing.assert_close(results[i], results[count + i])
        torch.testing.assert_close(results[i], results[2 * count + i])


def test_ddim_eta1_equals_ddpm_with_posterior_variance():
    """DDIM with eta = 1 is ancestral sampling with sigma^2 = beta~ (same noise draws)."""
    engine = GaussianDiffusion(fixed_variance='small')
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    kwargs = dict(num_steps=40, dtype=torch.float64)
    ddim = engine.sample(model, (256, 2), sampler='ddim', eta=1.0,
                         generator=torch.Generator().manual_seed(6), **kwargs)
    ddpm = engine.sample(model, (256, 2), sampler='ddpm',
                         generator=torch.Generator().manual_seed(6), **kwargs)
    torch.testing.assert_close(ddim, ddpm)


def test_learned_range_endpoints_equal_fixed_variances():
    x = {}
    for name, learn, fixed, value in (('learn+1', True, 'large', 1.0),
                                      ('learn-1', True, 'large', -1.0),
                                      ('large', False, 'large', 0.0),
                                      ('small', False, 'small', 0.0)):
        engine = GaussianDiffusion(learn_sigma=learn, fixed_variance=fixed)
        model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D, learn_sigma=learn,
                                     var_value=value)
        x[name] = engine.sample(model, (128, 2), num_steps=30, dtype=torch.float64,
                                generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(x['learn+1'], x['large'])
    torch.testing.assert_close(x['learn-1'], x['small'])
    assert not torch.allclose(x['large'], x['small'])


def test_seeded_sampling_is_deterministic(capsys):
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    for sampler in SAMPLERS:
        a = engine.sample(model, (16, 2), sampler=sampler, num_steps=10, progress=True,
                          generator=torch.Generator().manual_seed(8), eta=0.5)
        assert f'{sampler} sampling' in capsys.readouterr().err  # the tqdm bar
        b = engine.sample(model, (16, 2), sampler=sampler, num_steps=10,
                          generator=torch.Generator().manual_seed(8), eta=0.5)
        c = engine.sample(model, (16, 2), sampler=sampler, num_steps=10,
                          generator=torch.Generator().manual_seed(9), eta=0.5)
        assert torch.equal(a, b)
        assert not torch.allclose(a, c)


def test_sampler_sees_original_timesteps_and_bad_arguments_fail():
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    model.record = True
    engine.sample(model, (2, 2), sampler='ddim', num_steps='ddim50')
    seen = [int(call['t'][0]) for call in model.seen]
    assert seen == list(range(980, -1, -20))
    assert all(call['t'].dtype == torch.int64 for call in model.seen)
    with pytest.raises(ValueError, match='unknown sampler'):
        engine.sample(model, (2, 2), sampler='euler')
    with pytest.raises(ValueError, match='resample_jumps > 1'):
        engine.sample(model, (2, 2), resample_jumps=2)


@pytest.mark.gpu
def test_cuda_sampling_matches_cpu():
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    x_T = torch.randn(256, 2, dtype=torch.float64)
    for sampler in ('ddim', 'dpmpp_2m', 'dpmpp_3m', 'unipc'):
        cpu = engine.sample(model, x_T.shape, sampler=sampler, num_steps=20, x_T=x_T,
                            dtype=torch.float64)
        gpu = engine.sample(model, x_T.shape, sampler=sampler, num_steps=20,
                            x_T=x_T.cuda(), dtype=torch.float64, device='cuda')
        assert gpu.device.type == 'cuda'
        torch.testing.assert_close(gpu.cpu(), cpu)
    gen = torch.Generator(device='cuda').manual_seed(0)
    x = engine.sample(model, (4000, 2), sampler='ddpm', num_steps=100, generator=gen,
                      device='cuda', dtype=torch.float64)
    dist = gaussian_distances(x.cpu(), MEAN_2D, COV_2D)
    assert dist['mean_err'] < 0.06 and dist['cov_rel'] < 0.1, dist


def test_timestep_spacing_defaults_and_overrides():
    """A bare step count is spread by the sampler's spacing (per-schedule for dpmpp_2m)."""
    for schedule, dpm in (('linear', 'cubic'), ('cosine', 'trailing'),
                          ('scaled_linear', 'quad')):
        engine = GaussianDiffusion(beta_schedule=schedule)
        assert engine.timestep_spacing == dict(ddpm='linspace', ddim='linspace',
                                               dpmpp_2m=dpm, dpmpp_3m='logsnr',
                                               unipc='logsnr')
        model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
        for sampler, kind in (('dpmpp_2m', dpm), ('dpmpp_3m', 'logsnr'), ('unipc', 'logsnr'),
                              ('ddim', 'linspace')):
            model.seen, model.record = [], True
            engine.sample(model, (2, 2), sampler=sampler, num_steps=12)
            seen = sorted(int(call['t'][0]) for call in model.seen)
            assert seen == engine.timesteps_for(f'{kind}12').tolist()
    engine = GaussianDiffusion(timestep_spacing='trailing')
    assert set(engine.timestep_spacing.values()) == {'trailing'}
    assert engine.steps_for('ddpm', 20) == 'trailing20'
    assert engine.steps_for('ddpm', 1000) == 1000 and engine.steps_for('ddpm', 'quad5') == 'quad5'
    engine = GaussianDiffusion(timestep_spacing=dict(ddim='quad'), timestep_respacing=25)
    assert engine.steps_for('ddim') == 'quad25' and engine.steps_for('ddpm') == 25
    built = DIFFUSION.build(dict(type='GaussianDiffusion', timestep_spacing=dict(ddim='trailing'),
                                 start_at_zero_snr=False))
    assert built.timestep_spacing['ddim'] == 'trailing' and not built.start_at_zero_snr
    with pytest.raises(ValueError, match='timestep_spacing'):
        GaussianDiffusion(timestep_spacing='karras')
    with pytest.raises(ValueError, match='unknown samplers'):
        GaussianDiffusion(timestep_spacing=dict(euler='quad'))
    for sampler in ('ddim', 'dpmpp_3m'):
        with pytest.raises(ValueError, match='solver_order'):
            engine.sample(model, (2, 2), sampler=sampler, num_steps=5, solver_order=2)


@pytest.mark.parametrize('sampler', SAMPLER_NAMES)
def test_zero_snr_start_first_step_by_hand(sampler):
    """From zero SNR (abar = 0, where x_T ~ N(0, I) is exact) the first step is
    x = a_0 x0_hat(x_T, 999) + s_0 e, e = x_T for the ODE samplers and fresh noise for DDPM;
    with start_at_zero_snr=False it is the usual step from abar_999 = 4e-5."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    x0_model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D, prediction_type='x0')
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    a0, s0 = (engine.schedule.sqrt_alphas_cumprod[0].item(),
              engine.schedule.sqrt_one_minus_alphas_cumprod[0].item())
    a_T, s_T = (engine.schedule.sqrt_alphas_cumprod[-1].item(),
                engine.schedule.sqrt_one_minus_alphas_cumprod[-1].item())
    x0_T = x0_model(x_T, torch.full((16, ), 999))

    def run(zero_snr):
        return engine.sample(model, x_T.shape, sampler=sampler, num_steps=[0, 999], x_T=x_T,
                             dtype=torch.float64, start_at_zero_snr=zero_snr,
                             generator=torch.Generator().manual_seed(12))

    e = x_T
    if sampler == 'ddpm':
        e = torch.randn(16, 2, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    expected = x0_model(a0 * x0_T + s0 * e, torch.zeros(16, dtype=torch.int64))
    torch.testing.assert_close(run(True), expected)
    if sampler != 'ddpm':  # DDIM from abar_999: eps_hat = (x_T - a_T x0_hat) / s_T
        old = a0 * x0_T + s0 * (x_T - a_T * x0_T) / s_T
        torch.testing.assert_close(run(False), x0_model(old, torch.zeros(16, dtype=torch.int64)))
        assert not torch.allclose(run(True), run(False))


@pytest.mark.parametrize('schedule,prediction', [('linear', 'eps'), ('cosine', 'v')])
def test_fast_samplers_match_ddpm_1000_exact_law(schedule, prediction):
    """The exact output laws (no sampling noise): UniPC-20 is as close to the data law as
    ancestral DDPM-1000 (50x fewer calls), DPM-Solver++(3M)-30 closer (33x fewer; -20 is
    ~3x / ~7x DDPM's, still better than 2M-20), DPM-Solver++(2M)-50 within 0.0025 (20x
    fewer) and -20 within 0.01 / 0.02. Before the zero-SNR start and the spacing defaults
    these were 0.0099 (2M-50) and 0.0130 (2M-20) on the linear schedule, 0.038 (2M-20) on
    cosine."""
    engine = GaussianDiffusion(beta_schedule=schedule, prediction_type=prediction)
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D, prediction_type=prediction)
    ddpm = sampler_law_w2(engine, model, 'ddpm', 1000)
    assert ddpm < 0.0015
    assert sampler_law_w2(engine, model, 'unipc', 20) < 1.5 * ddpm
    assert sampler_law_w2(engine, model, 'dpmpp_2m', 50) < 0.0025
    dpm_20 = sampler_law_w2(engine, model, 'dpmpp_2m', 20)
    assert dpm_20 < (0.01 if schedule == 'linear' else 0.02)
    assert sampler_law_w2(engine, model, 'dpmpp_3m', 30) < ddpm
    assert sampler_law_w2(engine, model, 'dpmpp_3m', 20) < 0.6 * dpm_20
    # DDIM is first order: 50 steps stay ~0.04-0.07 whatever the spacing, ~1/K
    ddim_50 = sampler_law_w2(engine, model, 'ddim', 50)
    assert 0.03 < ddim_50 < 0.08
    assert sampler_law_w2(engine, model, 'ddim', 100) == pytest.approx(ddim_50 / 2, rel=0.15)


def test_zero_snr_start_removes_the_terminal_snr_floor():
    """abar_999 = 4e-5 > 0 on the linear schedule: read as N(0, I), x_T lacks the mean
    a_T mu, which an ODE carries to the samples. Starting at zero SNR removes that floor."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D)
    for sampler in ('dpmpp_2m', 'dpmpp_3m', 'unipc'):
        old = sampler_law_w2(engine, model, sampler, 50, start_at_zero_snr=False)
        new = sampler_law_w2(engine, model, sampler, 50)
        assert old > 0.009 and new < 0.25 * old, (sampler, old, new)


def test_unipc_is_third_order():
    """Deterministic error against a converged reference falls > 6x when steps double
    (third order: 8x), against ~4x for DPM-Solver++(2M) on the same log-SNR grids."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D)
    x_T = torch.randn(256, 4, generator=torch.Generator().manual_seed(13), dtype=torch.float64)

    def run(sampler, steps, **kw):
        return engine.sample(model, x_T.shape, sampler=sampler, num_steps=steps, x_T=x_T,
                             dtype=torch.float64, **kw)

    ref = run('unipc', 'logsnr400')

    def err(sampler, steps, **kw):
        return (run(sampler, steps, **kw) - ref).norm(dim=1).mean().item()

    ratio_unipc = err('unipc', 'logsnr30') / err('unipc', 'logsnr60')
    ratio_unipc2 = err('unipc', 'logsnr30', solver_order=2) / err('unipc', 'logsnr60',
                                                                 solver_order=2)
    ratio_dpm = err('dpmpp_2m', 'logsnr30') / err('dpmpp_2m', 'logsnr60')
    assert ratio_unipc > 6.0, ratio_unipc
    assert ratio_unipc2 > 6.0, ratio_unipc2  # UniP-2 + UniC-2 is also third order
    assert 3.0 < ratio_dpm < 5.5, ratio_dpm


def test_cosine_schedule_samplers_recover_gaussian():
    engine = GaussianDiffusion(beta_schedule='cosine', prediction_type='v')
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D, prediction_type='v')
    for sampler, steps in (('ddpm', 250), ('dpmpp_2m', 20)):
        x = engine.sample(model, (4000, 4), sampler=sampler, num_steps=steps,
                          generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        dist = gaussian_distances(x, MEAN_4D, COV_4D)
        assert dist['mean_err'] < 0.06 and dist['cov_rel'] < 0.1, (sampler, dist)


@pytest.mark.parametrize('sampler', SAMPLER_NAMES)
def test_one_and_two_step_chains(sampler):
    """K = 1 returns the x0 prediction at t = 999; K = 2 is finite and sees t = 999, 0."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    x0_model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D, prediction_type='x0')
    x_T = torch.randn(8, 2, dtype=torch.float64)
    one = engine.sample(model, x_T.shape, sampler=sampler, num_steps=[999], x_T=x_T,
                        dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(one, x0_model(x_T, torch.full((8, ), 999)))
    model.record = True
    two = engine.sample(model, x_T.shape, sampler=sampler, num_steps=2, x_T=x_T,
                        dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert [int(c['t'][0]) for c in model.seen] == [999, 0]
    assert torch.isfinite(two).all()


def test_dpmpp_3m_step_is_exact_for_quadratic_x0():
    """One 3M step integrates x_n = (s_n / s_c) x + s_n int e^lambda x0(lambda) d lambda
    exactly when x0 is a quadratic in lambda through the three calls (third order), on
    unequal gaps; 2M (linear x0) is off by the curvature term."""
    c0, c1, c2 = 0.7, -0.4, 0.9
    lam_c, h = 0.3, 0.6
    lams = [lam_c - 0.5 * h - 0.8 * h, lam_c - 0.5 * h, lam_c]  # oldest first

    def x0_at(lam):
        u = lam - lam_c
        return torch.tensor([c0 + c1 * u + c2 * u**2], dtype=torch.float64)

    def level(lam):  # abar with log(a / s) = lam
        return Level(1 / (1 + math.exp(-2 * lam)))

    cur, nxt = level(lam_c), level(lam_c + h)
    x = torch.tensor([1.3], dtype=torch.float64)
    # int_0^h e^(u - h) (c0 + c1 u + c2 u^2) du, by hand
    e = math.exp(-h)
    integral = c0 * (1 - e) + c1 * (h - 1 + e) + c2 * (h**2 - 2 * h + 2 - 2 * e)
    exact = nxt.s / cur.s * 1.3 + nxt.a * integral
    results = {}
    for name in ('dpmpp_2m', 'dpmpp_3m'):
        step = SAMPLERS[name]()
        step.history = [(lam, x0_at(lam)) for lam in lams[:-1]]
        results[name] = step(x, dict(x0=x0_at(lam_c)), cur, nxt, lam_c, None).item()
    assert results['dpmpp_3m'] == pytest.approx(exact, abs=1e-12)
    assert abs(results['dpmpp_2m'] - exact) > 1e-3


def test_dpmpp_3m_is_third_order():
    """Against a converged reference, the 3M error falls > 8x when the log-SNR steps double
    (third order; measured 17x and 21x), 2M's ~4x."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D)
    x_T = torch.randn(256, 4, generator=torch.Generator().manual_seed(13), dtype=torch.float64)

    def run(sampler, steps):
        return engine.sample(model, x_T.shape, sampler=sampler, num_steps=steps, x_T=x_T,
                             dtype=torch.float64)

    ref = run('unipc', 'logsnr400')

    def err(sampler, steps):
        return (run(sampler, steps) - ref).norm(dim=1).mean().item()

    errs = [err('dpmpp_3m', f'logsnr{k}') for k in (15, 30, 60)]
    assert errs[0] / errs[1] > 8.0 and errs[1] / errs[2] > 8.0, errs
    ratio_2m = err('dpmpp_2m', 'logsnr30') / err('dpmpp_2m', 'logsnr60')
    assert 3.0 < ratio_2m < 5.5, ratio_2m


def test_dpmpp_3m_warm_up_and_lower_order_final():
    """3M's first two steps are 1st / 2nd order (the 2M steps) and on chains shorter than 15
    the step before the final one is 2M too: with 4 steps 3M IS 2M; with 5 it differs
    (one third-order step); from 15 steps on, the penultimate step is third order."""
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D)
    x_T = torch.randn(64, 4, generator=torch.Generator().manual_seed(14), dtype=torch.float64)

    def run(sampler, steps, below=DPMSolverPP3MStep.LOWER_ORDER_FINAL_BELOW):
        old = DPMSolverPP3MStep.LOWER_ORDER_FINAL_BELOW
        DPMSolverPP3MStep.LOWER_ORDER_FINAL_BELOW = below
        try:
            return engine.sample(model, x_T.shape, sampler=sampler, num_steps=steps, x_T=x_T,
                                 dtype=torch.float64)
        finally:
            DPMSolverPP3MStep.LOWER_ORDER_FINAL_BELOW = old

    torch.testing.assert_close(run('dpmpp_3m', 'logsnr4'), run('dpmpp_2m', 'logsnr4'),
                               rtol=0, atol=0)
    assert not torch.allclose(run('dpmpp_3m', 'logsnr4', below=0), run('dpmpp_2m', 'logsnr4'))
    assert not torch.allclose(run('dpmpp_3m', 'logsnr5'), run('dpmpp_2m', 'logsnr5'))
    for steps in ('logsnr14', 'logsnr15'):  # lowered below 15 only
        lowered = torch.equal(run('dpmpp_3m', steps), run('dpmpp_3m', steps, below=1000))
        assert lowered == (steps == 'logsnr14'), steps
