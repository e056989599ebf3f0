"""The exact denoiser of Gaussian data, to test and benchmark samplers against closed forms.

For data x0 ~ N(mu, Sigma) and x_t = a_t x0 + s_t eps, x_t ~ N(a_t mu, C_t) with
C_t = a_t^2 Sigma + s_t^2 I, and the MMSE predictions are linear in x_t:

    eps*(x_t, t) = E[eps | x_t] = s_t C_t^{-1} (x_t - a_t mu)
    x0*(x_t, t)  = E[x0 | x_t]  = mu + a_t Sigma C_t^{-1} (x_t - a_t mu)
    v*(x_t, t)   = a_t eps* - s_t x0*

A sampler driven by this denoiser should reproduce N(mu, Sigma) up to its discretisation
error, which makes the distance to N(mu, Sigma) a clean accuracy measure.
"""
from typing import Optional, Tuple

import torch

from .samplers import SAMPLERS, Level
from .schedules import NoiseSchedule


class GaussianDataDenoiser:
    """``model(x_t, t, mu=None, drop=None)`` with the exact prediction for N(mu, Sigma) data.

    Args:
        schedule: the FULL chain (``engine.schedule``); ``t`` are original timesteps.
        mean: (D,) data mean (used when no ``mu`` condition is given or it is dropped).
        cov: (D, D) data covariance (symmetric positive definite).
        prediction_type: ``'eps'``, ``'x0'`` or ``'v'``.
        learn_sigma: also output D variance channels, all equal to ``var_value``.
        var_value: the learned-range value in [-1, 1] (1 = beta_t, -1 = beta~_t).

    Inputs x_t are (B, D). The optional condition ``mu`` (B, D) replaces the data mean per
    sample (a conditional model); ``drop={'mu': bool (B,)}`` falls back to ``mean``.
    """

    def __init__(self, schedule: NoiseSchedule, mean: torch.Tensor, cov: torch.Tensor,
                 prediction_type: str = 'eps', learn_sigma: bool = False,
                 var_value: float = 0.0):
        self.schedule = schedule
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.cov = torch.as_tensor(cov, dtype=torch.float64)
        dim = self.mean.shape[0]
        if self.cov.shape != (dim, dim):
            raise ValueError(f'GaussianDataDenoiser: cov must be ({dim}, {dim}), found '
                             f'{tuple(self.cov.shape)}')
        self.prediction_type = prediction_type
        self.learn_sigma = learn_sigma
        self.var_value = var_value
        self.calls = 0  # network calls, for benchmarks
        self.seen = []  # (t, cond keys) of each call when record=True
        self.record = False

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, mu: Optional[torch.Tensor] = None,
                 drop: Optional[dict] = None) -> torch.Tensor:
        self.calls += 1
        if self.record:
            self.seen.append(dict(t=t.clone(), mu=mu, drop=drop))
        batch, dim = x_t.shape
        mean = self.mean.to(x_t.device).expand(batch, dim)
        if mu is not None:
            mean = mu.to(x_t.device, torch.float64)
            if drop is not None and 'mu' in drop:
                mean = torch.where(drop['mu'][:, None].to(x_t.device), self.mean.to(x_t.device),
                                   mean)
        # eps* = K_t (x_t - a_t mu) and x0* = mu + a_t Sigma K_t (x_t - a_t mu) / s_t with
        # K_t = s_t C_t^{-1}: one (D, D) matrix per distinct timestep in the batch.
        steps, inverse = torch.unique(t.cpu(), return_inverse=True)
        a = self.schedule.sqrt_alphas_cumprod[steps]  # (U,)
        s = self.schedule.sqrt_one_minus_alphas_cumprod[steps]  # (U,)
        eye = torch.eye(dim, dtype=torch.float64)
        cov_t = a[:, None, None]**2 * self.cov + s[:, None, None]**2 * eye  # (U, D, D)
        gain = s[:, None, None] * torch.linalg.inv(cov_t)  # K_t: (U, D, D)
        x0_gain = a[:, None, None] / s[:, None, None] * (self.cov @ gain)  # (U, D, D)
        device = x_t.device
        a_b = a.to(device)[inverse.to(device)][:, None]  # (B, 1)
        s_b = s.to(device)[inverse.to(device)][:, None]  # (B, 1)
        resid = x_t.double() - a_b * mean  # (B, D)
        if steps.numel() == 1:
            eps = resid @ gain[0].T.to(device)  # (B, D)
            x0 = mean + resid @ x0_gain[0].T.to(device)
        else:
            idx = inverse.to(device)
            eps = torch.einsum('bij,bj->bi', gain.to(device)[idx], resid)  # (B, D)
            x0 = mean + torch.einsum('bij,bj->bi', x0_gain.to(device)[idx], resid)
        if self.prediction_type == 'eps':
            out = eps
        elif self.prediction_type == 'x0':
            out = x0
        else:
            out = a_b * eps - s_b * x0
        out = out.to(x_t.dtype)
        if self.learn_sigma:
            out = torch.cat([out, torch.full_like(out, self.var_value)], dim=1)
        return out


def gaussian_distances(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> dict:
    """Distances between the empirical moments of ``samples`` (N, D) and N(mean, cov).

    Returns:
        dict(mean_err = ||m - mean||, cov_fro = ||S - cov||_F, cov_rel = cov_fro / ||cov||_F,
        w2 = the 2-Wasserstein distance between N(m, S) and N(mean, cov)).
    """
    x = samples.double()
    mean = torch.as_tensor(mean, dtype=torch.float64)
    cov = torch.as_tensor(cov, dtype=torch.float64)
    m = x.mean(0)
    emp = torch.cov(x.T).reshape(cov.shape)
    cov_fro = torch.linalg.norm(emp - cov)
    return dict(mean_err=float(torch.linalg.norm(m - mean)), cov_fro=float(cov_fro),
                cov_rel=float(cov_fro / torch.linalg.norm(cov)),
                w2=gaussian_w2(m, emp, mean, cov))


def gaussian_w2(mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor,
                cov2: torch.Tensor) -> float:
    """2-Wasserstein distance between N(mean1, cov1) and N(mean2, cov2) ((D,), (D, D)).

    W2^2 = |m1 - m2|^2 + tr(C1 + C2 - 2 (C2^(1/2) C1 C2^(1/2))^(1/2)).
    """
    root = _sqrtm(cov2)
    cross = _sqrtm(root @ cov1 @ root)
    w2_sq = ((mean1 - mean2)**2).sum() + torch.trace(cov1 + cov2 - 2 * cross)
    return float(w2_sq.clamp(min=0).sqrt())


def _sqrtm(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    vals, vecs = torch.linalg.eigh((matrix + matrix.T) / 2)
    return vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T


def sampler_law(engine, model: GaussianDataDenoiser, sampler: str, num_steps=None,
                eta: float = 0.0, **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """The EXACT output law N(m, C) of a sampler driven by the Gaussian denoiser ``model``.

    With this denoiser every sampler is affine in its inputs, so its output law is Gaussian
    and known without Monte-Carlo noise:

    - deterministic samplers (``ddim`` with eta = 0, ``dpmpp_2m``, ``dpmpp_3m``, ``unipc``) map x_T
      affinely: out = M x_T + b, probed with D + 1 inputs (0 and the unit vectors);
      law N(b, M M^T) for x_T ~ N(0, I);
    - stochastic single-noise steps (``ddpm``, ``ddim`` with eta > 0) are propagated step
      by step, x' = A x + c + N z: m <- A m + c, C <- A C A^T + N N^T, with A, c and N
      probed through the sampler's own step (zero noise / unit-vector noise).

    Args:
        engine: the :class:`GaussianDiffusion` (its spacing and zero-SNR start apply).
        model: the exact denoiser of N(mu, Sigma) in D dims (no conditions).
        sampler, num_steps, eta: as :meth:`GaussianDiffusion.sample`.
        kwargs: more ``sample`` arguments for the deterministic samplers
            (``start_at_zero_snr``, ``solver_order``).

    Returns:
        (mean (D,), covariance (D, D)) float64 on the CPU.
    """
    dim = model.mean.numel()
    probes = torch.cat([torch.zeros(1, dim), torch.eye(dim)]).double()  # (D+1, D)
    if sampler in ('dpmpp_2m', 'dpmpp_3m', 'unipc') or (sampler == 'ddim' and eta == 0):
        out = engine.sample(model, probes.shape, sampler=sampler, num_steps=num_steps, x_T=probes,
                            eta=eta, dtype=torch.float64, **kwargs).cpu()
        linear = (out[1:] - out[0]).T  # column j = image of e_j: (D, D)
        return out[0], linear @ linear.T
    if sampler not in ('ddpm', 'ddim'):
        raise ValueError(f'sampler_law: unknown sampler {sampler!r}')
    chain = engine.schedule_for(engine.steps_for(sampler, num_steps))
    zero_top = kwargs.get('start_at_zero_snr', engine.start_at_zero_snr) and chain.num_steps > 1
    step = SAMPLERS[sampler](eta=eta)
    law_mean = torch.zeros(dim, dtype=torch.float64)
    law_cov = torch.eye(dim, dtype=torch.float64)
    top = chain.num_steps - 1
    for i in range(top, -1, -1):
        cur = Level(0.0 if (zero_top and i == top) else float(chain.alphas_cumprod[i]))
        nxt = None if i == 0 else Level(float(chain.alphas_cumprod[i - 1]))
        t = torch.full((dim + 1, ), int(chain.timesteps[i]), dtype=torch.int64)
        p = engine.p_mean_variance(model(probes, t), probes, t, chain)
        lam = float(chain.log_snr[i])
        out = step(probes, p, cur, nxt, lam, lambda: torch.zeros_like(probes))
        offset = out[0]
        linear = (out[1:] - offset).T  # (D, D)
        p0 = {k: v[:1].expand(dim, -1) if v.shape[0] == dim + 1 else v for k, v in p.items()}
        noise = step(probes[:1].expand(dim, -1), p0, cur, nxt, lam,
                     lambda: torch.eye(dim, dtype=torch.float64)) - offset  # row j = N e_j
        law_mean = linear @ law_mean + offset
        law_cov = linear @ law_cov @ linear.T + noise.T @ noise
    return law_mean, law_cov


def sampler_law_w2(engine, model: GaussianDataDenoiser, sampler: str, num_steps=None,
                   eta: float = 0.0, **kwargs) -> float:
    """W2 between the exact output law of a sampler (:func:`sampler_law`) and the data law
    N(mu, Sigma) of ``model``: the sampler's discretisation error, free of sampling noise."""
    mean, cov = sampler_law(engine, model, sampler, num_steps, eta, **kwargs)
    return gaussian_w2(mean, cov, model.mean, model.cov)
