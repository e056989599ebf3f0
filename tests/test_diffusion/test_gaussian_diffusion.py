"""Forward process, conversions and training losses of GaussianDiffusion vs closed forms."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope

from occworld4d.diffusion import GaussianDiffusion, normal_kl
from occworld4d.registry import DIFFUSION


def test_build_from_registry_with_the_contract_config():
    engine = DIFFUSION.build(
        dict(type='GaussianDiffusion', num_timesteps=1000, beta_schedule='linear',
             prediction_type='eps', learn_sigma=True, loss_type='hybrid'))
    assert isinstance(engine, GaussianDiffusion)
    assert engine.learn_sigma and engine.loss_type == 'hybrid'
    assert engine.timesteps_for(None).tolist() == list(range(1000))
    respaced = DIFFUSION.build(dict(type='GaussianDiffusion', timestep_respacing='ddim50'))
    assert respaced.timesteps_for(None).tolist() == list(range(0, 1000, 20))
    # as a Runner builds it: under the default scope 'occworld4d'
    with DefaultScope.overwrite_default_scope('occworld4d'):
        scoped = DIFFUSION.build(dict(type='GaussianDiffusion', prediction_type='v'))
    assert isinstance(scoped, GaussianDiffusion) and scoped.prediction_type == 'v'


def test_q_mean_variance_and_q_sample_moments():
    engine = GaussianDiffusion()
    x0 = torch.tensor([[1.5, -2.0, 0.25]], dtype=torch.float64)
    t = torch.tensor([300])
    abar = torch.prod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)[:301])
    mean, var, log_var = engine.q_mean_variance(x0, t)
    torch.testing.assert_close(mean, abar.sqrt() * x0)
    assert var.item() == pytest.approx((1 - abar).item(), rel=1e-12)
    assert log_var.item() == pytest.approx(math.log(1 - abar.item()), rel=1e-12)
    # 200k draws: empirical mean and variance of x_t match the formulas
    many = x0.expand(200000, 3)
    draws = engine.q_sample(many, t.expand(200000), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws.mean(0), mean[0], atol=6e-3, rtol=0)
    torch.testing.assert_close(draws.var(0), var.reshape(1).expand(3), atol=6e-3, rtol=0)
    # with explicit noise it is exactly a x0 + s eps
    noise = torch.randn(1, 3, dtype=torch.float64)
    torch.testing.assert_close(engine.q_sample(x0, t, noise),
                               abar.sqrt() * x0 + (1 - abar).sqrt() * noise)


def test_q_posterior_matches_closed_form():
    engine = GaussianDiffusion(num_timesteps=100, beta_schedule='cosine')
    abar = engine.schedule.alphas_cumprod
    x0 = torch.randn(4, 2, 3, dtype=torch.float64)
    x_t = torch.randn(4, 2, 3, dtype=torch.float64)
    t = torch.tensor([0, 1, 50, 99])
    mean, var, log_var = engine.q_posterior_mean_variance(x0, x_t, t)
    for b, step in enumerate(t.tolist()):
        prev = abar[step - 1] if step > 0 else torch.tensor(1.0, dtype=torch.float64)
        beta = 1 - abar[step] / prev
        expected_mean = (prev.sqrt() * beta / (1 - abar[step]) * x0[b] +
                         (1 - beta).sqrt() * (1 - prev) / (1 - abar[step]) * x_t[b])
        torch.testing.assert_close(mean[b], expected_mean)
        expected_var = beta * (1 - prev) / (1 - abar[step])
        assert var[b].item() == pytest.approx(expected_var.item(), abs=1e-15)
        if step > 0:
            assert log_var[b].item() == pytest.approx(math.log(expected_var.item()), rel=1e-10)
    torch.testing.assert_close(mean[0], x0[0])  # t = 0: the posterior mean is x0


def test_eps_x0_v_conversions_round_trip():
    engine = GaussianDiffusion()
    x0 = torch.randn(5, 3, 4, dtype=torch.float64)
    eps = torch.randn(5, 3, 4, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 998, 999])
    x_t = engine.q_sample(x0, t, eps)
    v = engine.predict_v(x0, eps, t)
    torch.testing.assert_close(engine.predict_x0_from_eps(x_t, t, eps), x0)
    torch.testing.assert_close(engine.predict_eps_from_x0(x_t, t, x0), eps)
    torch.testing.assert_close(engine.predict_x0_from_v(x_t, t, v), x0)
    torch.testing.assert_close(engine.predict_eps_from_v(x_t, t, v), eps)
    a = engine.schedule.sqrt_alphas_cumprod[t].reshape(5, 1, 1)
    s = engine.schedule.sqrt_one_minus_alphas_cumprod[t].reshape(5, 1, 1)
    torch.testing.assert_close(v, a * eps - s * x0)
    for kind, pred in (('eps', eps), ('x0', x0), ('v', v)):
        engine.prediction_type = kind
        torch.testing.assert_close(engine.prediction_to_x0(pred, x_t, t), x0)
        torch.testing.assert_close(engine.prediction_target(x0, eps, t), pred)


class Oracle(torch.nn.Module):
    """Returns the exact target (+ offset) and a learnable variance value, records inputs."""

    def __init__(self, engine, target, offset=0.0, var_value=0.0):
        super().__init__()
        self.engine, self.target, self.offset = engine, target, offset
        self.var = torch.nn.Parameter(torch.tensor(float(var_value), dtype=torch.float64))
        self.pred = None

    def forward(self, x_t, t, **cond):
        self.seen_x_t = x_t
        self.pred = (self.target + self.offset).clone().requires_grad_(True)
        if not self.engine.learn_sigma:
            return self.pred
        return torch.cat([self.pred, self.var.expand_as(self.pred)], dim=1)


@pytest.mark.parametrize('prediction_type', ['eps', 'x0', 'v'])
def test_mse_is_exact_for_known_outputs(prediction_type):
    engine = GaussianDiffusion(prediction_type=prediction_type)
    x0 = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 400, 999])
    target = engine.prediction_target(x0, noise, t)
    exact = engine.training_losses(Oracle(engine, target), x0, t, noise=noise)
    torch.testing.assert_close(exact['mse'], torch.zeros(3, dtype=torch.float64))
    off = engine.training_losses(Oracle(engine, target, offset=0.5), x0, t, noise=noise)
    torch.testing.assert_close(off['loss'], torch.full((3, ), 0.25, dtype=torch.float64))
    assert 'vb' not in off
    weighted = engine.training_losses(
        Oracle(engine, target, offset=0.5), x0, t, noise=noise,
        weights=torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(weighted['loss'],
                               torch.tensor([0.25, 0.5, 0.0], dtype=torch.float64))


def test_masked_loss_ignores_masked_cells_exactly():
    engine = GaussianDiffusion(learn_sigma=True)
    x0 = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 37])
    mask = torch.zeros(2, 1, 5, 6, dtype=torch.bool)
    mask[:, :, 1:4, 2:5] = True  # 9 valid cells of 30, on every channel
    target = engine.prediction_target(x0, noise, t)
    offset = torch.zeros_like(x0)
    offset[:, :, 1:4, 2:5] = 0.3  # error 0.3 on valid cells
    base = engine.training_losses(Oracle(engine, target, offset), x0, t, mask=mask,
                                  noise=noise)
    torch.testing.assert_close(base['mse'], torch.full((2, ), 0.09, dtype=torch.float64))
    garbage = offset.clone()
    garbage[~mask.expand_as(garbage)] = float('inf')  # masked cells may hold anything
    model = Oracle(engine, target, garbage, var_value=0.3)
    changed = engine.training_losses(model, x0, t, mask=mask, noise=noise)
    base_var = engine.training_losses(Oracle(engine, target, offset, var_value=0.3), x0, t,
                                      mask=mask, noise=noise)
    for key in ('loss', 'mse', 'vb'):
        torch.testing.assert_close(changed[key], base_var[key], rtol=0, atol=0)
    changed['loss'].sum().backward()
    assert torch.all(model.pred.grad[~mask.expand_as(x0)] == 0)
    assert torch.all(model.pred.grad[mask.expand_as(x0)] != 0)
    # a float mask is a weighted mean: weight 3 on one valid cell
    weights = mask.double().clone()
    weights[:, :, 1, 2] = 3.0
    err = torch.full_like(x0, 0.3)**2
    err[:, :, 1, 2] = 1.0
    expected = (err * weights).flatten(1).sum(1) / weights.expand_as(x0).flatten(1).sum(1)
    off2 = offset.clone()
    off2[:, :, 1, 2] = 1.0
    got = engine.training_losses(Oracle(engine, target, off2), x0, t, mask=weights,
                                 noise=noise)['mse']
    torch.testing.assert_close(got, expected)


def test_zero_masked_inputs_and_bad_mask():
    engine = GaussianDiffusion()
    x0 = torch.randn(2, 1, 4, dtype=torch.float64)
    mask = torch.tensor([True, True, False, False]).reshape(1, 1, 4)
    model = Oracle(engine, torch.zeros_like(x0))
    engine.training_losses(model, x0, mask=mask, zero_masked_inputs=True)
    assert torch.all(model.seen_x_t[..., 2:] == 0) and torch.all(model.seen_x_t[..., :2] != 0)
    with pytest.raises(ValueError, match=r'mask of shape \(3,\) does not broadcast'):
        engine.training_losses(model, x0, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match='the model returned shape'):
        GaussianDiffusion(learn_sigma=True).training_losses(model, x0)
    with pytest.raises(ValueError, match=r't must be integer indices in \[0, 999\]'):
        engine.training_losses(model, x0, t=torch.tensor([0, 1000]))


def test_hybrid_vb_closed_form_and_stop_gradient():
    engine = GaussianDiffusion(learn_sigma=True)
    x0 = torch.rand(2, 2, 3, dtype=torch.float64) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([5, 700])
    target = engine.prediction_target(x0, noise, t)
    # exact eps and v = -1 (variance = posterior variance): the KL is exactly 0
    exact = engine.training_losses(Oracle(engine, target, var_value=-1.0), x0, t, noise=noise)
    torch.testing.assert_close(exact['vb'], torch.zeros(2, dtype=torch.float64), atol=1e-10,
                               rtol=0)
    # v = +1 (variance beta_t) with an eps error d: KL of two Gaussians in bits, by hand
    d = 0.2
    model = Oracle(engine, target, offset=d, var_value=1.0)
    out = engine.training_losses(model, x0, t, noise=noise)
    chain = engine.schedule
    for b, step in enumerate(t.tolist()):
        mean_shift = chain.posterior_mean_coef1[step] * chain.sqrt_one_minus_alphas_cumprod[
            step] / chain.sqrt_alphas_cumprod[step] * d  # x0 error propagated to the mean
        kl = normal_kl(torch.tensor(0.0, dtype=torch.float64),
                       chain.posterior_variance[step].log(), mean_shift, chain.betas[step].log())
        assert out['vb'][b].item() == pytest.approx(kl.item() / math.log(2), rel=1e-9)
    out['loss'].sum().backward()
    # mse sends gradient to the prediction, vb only to the variance (stop-grad on the mean)
    torch.testing.assert_close(model.pred.grad, 2 * d * torch.ones_like(x0) / 6)
    assert model.var.grad.abs().item() > 0


def test_vb_at_t0_is_the_discretized_decoder_nll():
    engine = GaussianDiffusion(learn_sigma=True)
    x0 = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)  # (1, 1, 2): a mid bin and the edge
    noise = torch.zeros_like(x0)
    target = engine.prediction_target(x0, noise, torch.tensor([0]))
    out = engine.training_losses(Oracle(engine, target, var_value=1.0), x0,
                                 torch.tensor([0]), noise=noise)
    # mean = x0 exactly; variance = the clipped log variance at t = 0 with v = 1: beta~_1
    std = engine.schedule.posterior_variance[1].sqrt().item()
    normal = torch.distributions.Normal(0.0, std)
    p_mid = (normal.cdf(torch.tensor(1 / 255)) - normal.cdf(torch.tensor(-1 / 255))).item()
    p_edge = 1 - normal.cdf(torch.tensor(-1 / 255)).item()
    expected = -(math.log(p_mid) + math.log(p_edge)) / 2 / math.log(2)
    assert out['vb'].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('learn_sigma', [False, True])
def test_training_reduces_the_loss_of_a_small_denoiser(learn_sigma):
    torch.manual_seed(0)
    engine = GaussianDiffusion(num_timesteps=100, learn_sigma=learn_sigma)
    out = 4 if learn_sigma else 2
    net = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, out))

    def model(x_t, t, **cond):
        return net(torch.cat([x_t, t[:, None].float() / 100], dim=1))

    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(4096, 2) * torch.tensor([1.0, 0.1]) + torch.tensor([2.0, -1.0])
    eval_t = torch.arange(0, 100, 100 / 256).long()
    eval_noise = torch.randn(256, 2, generator=gen)

    def eval_loss():
        with torch.no_grad():
            losses = engine.training_losses(model, data[:256], eval_t, noise=eval_noise)
            return {k: v.mean().item() for k, v in losses.items()}

    before = eval_loss()
    for _ in range(300):
        batch = data[torch.randint(0, 4096, (128, ), generator=gen)]
        loss = engine.training_losses(model, batch, generator=gen)['loss'].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after['mse'] < 0.5 * before['mse']
    if learn_sigma:  # the variational bound (t > 0 KL + t = 0 decoder NLL) falls too
        assert after['vb'] < 0.9 * before['vb']


@pytest.mark.parametrize('step', [50, 200, 500])
def test_vb_is_minimised_by_the_optimal_learned_variance(step):
    """With the exact mean of Gaussian data, E[KL] over the learned-range value v is minimal
    where exp(log var(v)) = beta~_t + coef1_t^2 tr(Var(x0 | x_t)) / D (closed form)."""
    from occworld4d.diffusion.analytic import GaussianDataDenoiser
    mean = torch.tensor([0.5, -1.0], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.4]], dtype=torch.float64)
    engine = GaussianDiffusion(learn_sigma=True)
    chain = engine.schedule
    x0 = torch.distributions.MultivariateNormal(mean, cov).sample((20000, ))
    t = torch.full((20000, ), step)
    noise = torch.randn_like(x0)
    a, s = chain.sqrt_alphas_cumprod[step], chain.sqrt_one_minus_alphas_cumprod[step]
    cov_t = a**2 * cov + s**2 * torch.eye(2, dtype=torch.float64)
    x0_var = cov - a**2 * cov @ torch.linalg.inv(cov_t) @ cov  # Var(x0 | x_t)
    best = chain.posterior_variance[step] + chain.posterior_mean_coef1[step]**2 * torch.trace(
        x0_var) / 2
    low, high = chain.posterior_variance[step].log(), chain.betas[step].log()
    v_best = (2 * (best.log() - low) / (high - low) - 1).item()
    assert -1 < v_best < 1
    grid = torch.linspace(-1, 1, 41)
    vb = [
        engine.training_losses(
            GaussianDataDenoiser(chain, mean, cov, learn_sigma=True, var_value=float(v)), x0, t,
            noise=noise)['vb'].mean().item() for v in grid
    ]
    assert abs(grid[int(torch.tensor(vb).argmin())].item() - v_best) <= 0.06
