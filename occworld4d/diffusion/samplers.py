"""Sampling loops: ancestral DDPM, DDIM and DPM-Solver++ (2M) on any (respaced) chain.

Every sampler walks the positions i = K-1 .. 0 of a :class:`NoiseSchedule` (the network
sees the original timestep ``chain.timesteps[i]``) and one ``step`` maps x at position i to
position i-1 (position -1 = the clean sample). The same loop handles guidance, inpainting
(with RePaint re-noising moves) and padding masks, so every sampler supports all of them.
"""
import math

import torch
from tqdm import tqdm

from .common import check_mask
from .guidance import ClassifierFreeGuidance, repaint_moves
from .schedules import NoiseSchedule


class SamplerStep:
    """One reverse step of a sampler: ``step(x, i, index, chain, p, noise_fn) -> x_{i-1}``.

    Args of the call: x (B, C, ...) at chain position ``i``; ``index`` int64 (B,) filled with
    i; ``chain`` the :class:`NoiseSchedule`; ``p`` the dict of
    :meth:`GaussianDiffusion.p_mean_variance` at x (mean, log_variance, x0, eps);
    ``noise_fn()`` a fresh N(0, I) draw of x's shape from the sampler's generator.
    ``reset()`` forgets any multistep history (called after a RePaint jump).
    """

    def __init__(self, eta: float = 0.0):
        self.eta = float(eta)

    def reset(self):
        pass


class DDPMStep(SamplerStep):
    """Ancestral sampling: x_{i-1} = mu(x_i, x0_hat) + sigma_i z (no noise at i = 0)."""

    def __call__(self, x, i, index, chain, p, noise_fn):
        if i == 0:
            return p['mean']
        return p['mean'] + (0.5 * p['log_variance']).exp() * noise_fn()


class DDIMStep(SamplerStep):
    """DDIM: x_{i-1} = a_{i-1} x0_hat + sqrt(1 - abar_{i-1} - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - abar_{i-1}) / (1 - abar_i)) sqrt(1 - abar_i / abar_{i-1})."""

    def __call__(self, x, i, index, chain, p, noise_fn):
        if i == 0:
            return p['x0']
        abar = chain.gather('alphas_cumprod', index, x)
        abar_prev = chain.gather('alphas_cumprod_prev', index, x)
        sigma = self.eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
        x = abar_prev.sqrt() * p['x0'] + (1 - abar_prev - sigma**2).clamp(min=0).sqrt() * p['eps']
        if self.eta > 0:
            x = x + sigma * noise_fn()
        return x


class DPMSolverPP2MStep(SamplerStep):
    """DPM-Solver++(2M), data-prediction form, lambda = log(a / s):

    x_{i-1} = (s_{i-1} / s_i) x_i - a_{i-1} (exp(-h) - 1) D, h = lambda_{i-1} - lambda_i,
    D = x0_i (first step) or (1 + 1/(2r)) x0_i - 1/(2r) x0_{i+1}, r = h_prev / h.
    The last step (to the clean sample, lambda = inf) is first order: x = x0_0.
    """

    def __init__(self, eta: float = 0.0):
        super().__init__(eta)
        self.reset()

    def reset(self):
        self.prev_x0 = None
        self.prev_h = None

    def __call__(self, x, i, index, chain, p, noise_fn):
        x0 = p['x0']
        if i == 0:
            self.reset()
            return x0
        lam = chain.log_snr
        h = float(lam[i - 1] - lam[i])
        if self.prev_x0 is None:
            data = x0
        else:
            r = self.prev_h / h
            data = (1 + 0.5 / r) * x0 - (0.5 / r) * self.prev_x0
        s_i = chain.gather('sqrt_one_minus_alphas_cumprod', index, x)
        s_prev = chain.gather('sqrt_one_minus_alphas_cumprod', index - 1, x)
        a_prev = chain.gather('sqrt_alphas_cumprod', index - 1, x)
        x = (s_prev / s_i) * x - a_prev * math.expm1(-h) * data
        self.prev_x0, self.prev_h = x0, h
        return x


# sampler name -> step class; a new sampler is one SamplerStep subclass added here.
SAMPLERS = {'ddpm': DDPMStep, 'ddim': DDIMStep, 'dpmpp_2m': DPMSolverPP2MStep}


def _pick_device(device, known, cond, generator):
    if device is not None:
        return torch.device(device)
    if known is not None:
        return known.device
    for value in cond.values():
        if torch.is_tensor(value):
            return value.device
    if generator is not None:
        return generator.device
    return torch.device('cpu')


@torch.no_grad()
def run_sampler(engine, model, shape, cond, sampler, chain: NoiseSchedule, eta=0.0,
                guidance_scale=1.0, guidance_keys=None, known=None, known_mask=None,
                resample_jumps=1, resample_steps=1, valid_mask=None, generator=None,
                progress=False, clip_x0=None, x_T=None, device=None, dtype=torch.float32):
    """The shared sampling loop behind :meth:`GaussianDiffusion.sample` (see its arguments).

    Returns:
        (B, C, ...) samples.
    """
    device = _pick_device(device, known, cond, generator)
    if (known is None) != (known_mask is None):
        raise ValueError('GaussianDiffusion.sample: known and known_mask go together; found '
                         f'known={"set" if known is not None else None}, known_mask='
                         f'{"set" if known_mask is not None else None}')
    if known is not None:
        if tuple(known.shape) != tuple(shape):
            raise ValueError(f'GaussianDiffusion.sample: known has shape {tuple(known.shape)}, '
                             f'expected {tuple(shape)}')
        known = known.to(device, dtype)
        known_mask = check_mask(known_mask, shape, 'known_mask', device).bool()
    elif resample_jumps != 1:
        raise ValueError('GaussianDiffusion.sample: resample_jumps > 1 (RePaint) needs known '
                         'and known_mask')
    if valid_mask is not None:
        valid_mask = check_mask(valid_mask, shape, 'valid_mask', device).bool()

    def noise_fn():
        return torch.randn(shape, generator=generator,
                           device=generator.device if generator is not None else device,
                           dtype=dtype).to(device)

    denoiser = ClassifierFreeGuidance(model, cond, guidance_scale, guidance_keys)
    step = SAMPLERS[sampler](eta=eta)
    batch = shape[0]

    def constrain(x, pos):
        """Impose the known region at chain position ``pos`` (-1 = clean) and the padding."""
        if known is not None:
            if pos < 0:
                target = known
            else:
                index = torch.full((batch, ), pos, dtype=torch.int64, device=device)
                target = engine._q_sample(known, index, chain, noise_fn())
            x = torch.where(known_mask, target, x)
        if valid_mask is not None:
            x = torch.where(valid_mask, x, torch.zeros_like(x))
        return x

    if x_T is None:
        x = noise_fn()
    else:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f'GaussianDiffusion.sample: x_T has shape {tuple(x_T.shape)}, '
                             f'expected {tuple(shape)}')
        x = x_T.to(device, dtype)
    x = constrain(x, chain.num_steps - 1)
    moves = repaint_moves(chain.num_steps, resample_steps, resample_jumps)
    for kind, src, dst in tqdm(moves, disable=not progress, desc=f'{sampler} sampling'):
        if kind == 'up':  # re-noise from position src to dst > src: q(x_dst | x_src)
            ratio = float(chain.alphas_cumprod[dst] / chain.alphas_cumprod[src])
            x = ratio**0.5 * x + (1 - ratio)**0.5 * noise_fn()
            step.reset()
        else:
            index = torch.full((batch, ), src, dtype=torch.int64, device=device)
            t = torch.full((batch, ), int(chain.timesteps[src]), dtype=torch.int64, device=device)
            output = denoiser(x, t)
            p = engine.p_mean_variance(output.to(dtype), x, index, chain, clip_x0=clip_x0)
            x = step(x, src, index, chain, p, noise_fn)
        x = constrain(x, dst)
    return x
