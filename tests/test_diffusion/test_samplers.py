"""Samplers driven by the exact denoiser of N(mu, Sigma) data must recover mu and Sigma."""
import pytest
import torch

from occworld4d.diffusion import GaussianDiffusion
from occworld4d.diffusion.analytic import GaussianDataDenoiser, gaussian_distances

MEAN_2D = torch.tensor([1.0, -0.5])
COV_2D = torch.tensor([[1.0, 0.6], [0.6, 0.5]])
_A = torch.tensor([[1.0, 0.3, 0.0, 0.0], [0.2, 0.7, 0.1, 0.0], [0.0, 0.4, 0.5, 0.2],
                   [0.1, 0.0, 0.3, 0.3]])
MEAN_4D = torch.tensor([1.0, -0.5, 0.3, 2.0])
COV_4D = _A @ _A.T + 0.05 * torch.eye(4)  # eigenvalues 0.06 .. 1.46


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
                                                         ('dpmpp_2m', 20, 20, 0.1)])
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
        for sampler in ('ddim', 'dpmpp_2m', 'ddpm'):
            results.append(engine.sample(model, x_T.shape, sampler=sampler, num_steps=25,
                                         x_T=x_T, generator=torch.Generator().manual_seed(5),
                                         dtype=torch.float64))
    for i in range(3):
        torch.testing.assert_close(results[i], results[3 + i])
        torch.testing.assert_close(results[i], results[6 + i])


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
    for sampler in ('ddpm', 'ddim', 'dpmpp_2m'):
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
    for sampler in ('ddim', 'dpmpp_2m'):
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


def test_solver_spacing_default_follows_the_schedule():
    for schedule, prefix in (('linear', 'cubic'), ('cosine', 'quad')):
        engine = GaussianDiffusion(beta_schedule=schedule)
        assert engine.solver_spacing == prefix
        model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
        model.record = True
        engine.sample(model, (2, 2), sampler='dpmpp_2m', num_steps=12)
        seen = sorted(int(call['t'][0]) for call in model.seen)
        assert seen == engine.timesteps_for(f'{prefix}12').tolist()
    engine = GaussianDiffusion(solver_spacing='uniform')
    model = GaussianDataDenoiser(engine.schedule, MEAN_2D, COV_2D)
    model.record = True
    engine.sample(model, (2, 2), sampler='dpmpp_2m', num_steps=12)
    assert sorted(int(c['t'][0]) for c in model.seen) == engine.timesteps_for(12).tolist()
    with pytest.raises(ValueError, match='solver_spacing'):
        GaussianDiffusion(solver_spacing='karras')


def test_cosine_schedule_samplers_recover_gaussian():
    engine = GaussianDiffusion(beta_schedule='cosine', prediction_type='v')
    model = GaussianDataDenoiser(engine.schedule, MEAN_4D, COV_4D, prediction_type='v')
    for sampler, steps in (('ddpm', 250), ('dpmpp_2m', 20)):
        x = engine.sample(model, (4000, 4), sampler=sampler, num_steps=steps,
                          generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        dist = gaussian_distances(x, MEAN_4D, COV_4D)
        assert dist['mean_err'] < 0.06 and dist['cov_rel'] < 0.1, (sampler, dist)


@pytest.mark.parametrize('sampler', ['ddpm', 'ddim', 'dpmpp_2m'])
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
