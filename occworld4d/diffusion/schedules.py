"""Noise schedules and timestep respacing.

A schedule is fully described by ``alphas_cumprod`` (abar_t, t = 0..N-1). Everything else a
sampler or a loss needs (betas, posterior coefficients, ...) is derived from it in
:class:`NoiseSchedule`, in float64. A respaced chain is the same object built from the
original ``alphas_cumprod`` at the kept timesteps, so its betas are
``1 - abar[k_i] / abar[k_{i-1}]`` and it reproduces the original marginals exactly.
"""
import math
from typing import Optional, Sequence, Union

import numpy as np
import torch

BETA_SCHEDULES = ('linear', 'scaled_linear', 'cosine')
# what a bare step count K can mean (``'<kind>K'`` strings of :func:`space_timesteps`)
SPACING_KINDS = ('linspace', 'leading', 'trailing', 'quad', 'cubic', 'logsnr')
# lowest lambda = log(a / s) of a 'logsnrK' grid below its top step (SNR = e^-8 = 3.4e-4)
LOGSNR_MIN = -4.0


def make_betas(schedule: str = 'linear',
               num_timesteps: int = 1000,
               beta_start: float = 1e-4,
               beta_end: float = 0.02,
               cosine_s: float = 0.008,
               max_beta: float = 0.999) -> np.ndarray:
    """Betas of a named schedule.

    Args:
        schedule: ``'linear'`` (DDPM; betas linear from ``beta_start`` to ``beta_end``),
            ``'scaled_linear'`` (sqrt(beta) linear, as in latent diffusion / Stable
            Diffusion), or ``'cosine'`` (improved DDPM: abar(t) = cos^2((t/N + s)/(1 + s) pi/2),
            betas clipped at ``max_beta``).
        num_timesteps: N, the length of the chain.
        beta_start: first beta of the linear schedules.
        beta_end: last beta of the linear schedules.
        cosine_s: the offset s of the cosine schedule.
        max_beta: upper clip of the cosine betas.

    Returns:
        float64 array (N,) with 0 < beta < 1.
    """
    if num_timesteps < 1:
        raise ValueError(f'make_betas: num_timesteps must be >= 1, found {num_timesteps}')
    if schedule == 'linear':
        betas = np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)
    elif schedule == 'scaled_linear':
        betas = np.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=np.float64)**2
    elif schedule == 'cosine':
        def abar(u):
            return math.cos((u + cosine_s) / (1 + cosine_s) * math.pi / 2)**2

        betas = np.array([
            min(1 - abar((i + 1) / num_timesteps) / abar(i / num_timesteps), max_beta)
            for i in range(num_timesteps)
        ], dtype=np.float64)
    else:
        raise ValueError(f'make_betas: unknown beta schedule {schedule!r}; '
                         f'expected one of {BETA_SCHEDULES}')
    if not (np.all(betas > 0) and np.all(betas < 1)):
        raise ValueError(f'make_betas: schedule {schedule!r} gives betas outside (0, 1): '
                         f'min {betas.min()}, max {betas.max()}')
    return betas


def space_timesteps(num_timesteps: int,
                    spacing: Union[int, str, Sequence[int]],
                    alphas_cumprod: Optional[np.ndarray] = None) -> np.ndarray:
    """Original timestep indices kept by a respaced chain.

    Args:
        num_timesteps: N of the original chain.
        spacing: one of
            - an int, a digit string ``'50'`` or ``'linspaceK'``: that many steps evenly
              spread over [0, N-1], both ends included (rounded);
            - ``'leadingK'``: ``arange(K) * (N // K)`` (0 included, the top N-1 usually
              not: the first step starts below the trained chain's end);
            - ``'trailingK'``: ``round(arange(N, 0, -N / K)) - 1`` (N-1 included, 0 usually
              not: the last network call is at t = N / K - 1);
            - ``'ddimK'``: the DDIM stride rule, ``range(0, N, stride)`` with the integer
              stride that gives exactly K steps (0 included, N-1 usually not);
            - ``'quadK'`` / ``'cubicK'``: K steps quadratic / cubic in time,
              t_k = round((k / (K-1))^p (N-1)), p = 2 / 3: dense near the data end, where
              the ODE samplers make most of their error (bumped apart to stay distinct);
            - ``'logsnrK'``: K steps uniform in lambda = log(a / s) (needs
              ``alphas_cumprod``); where the chain reaches below ``LOGSNR_MIN`` (SNR 3e-4,
              where a unit-variance signal is still invisible) the top index N-1 is kept
              and the other K-1 steps are uniform over [LOGSNR_MIN, lambda_0], so that no
              step is spent on the flat pure-noise end of the cosine schedule;
            - a comma string ``'10,15,20'`` (improved DDPM sections): split [0, N) into
              equal sections and take that many evenly spread steps from each;
            - a sequence of ints: the kept indices themselves.
        alphas_cumprod: (N,) abar of the chain, only needed for ``'logsnrK'``.

    Returns:
        int64 array (K,) of unique kept indices, ascending.
    """
    if isinstance(spacing, str):
        text = spacing.strip()
        for kind, rule in _KIND_RULES.items():  # '<kind>K' strings
            if text.startswith(kind):
                count = _count(text[len(kind):], num_timesteps, spacing)
                return rule(num_timesteps, count, alphas_cumprod, spacing)
        if ',' in text:
            parts = [c.strip() for c in text.split(',')]
            if not all(c.isdigit() for c in parts):
                raise ValueError(f'space_timesteps: cannot parse sections {spacing!r}; '
                                 "expected step counts like '10,15,20'")
            return _sectioned(num_timesteps, [int(c) for c in parts])
        if not text.isdigit():
            raise ValueError(f'space_timesteps: cannot parse spacing {spacing!r}; expected '
                             "an int, '<kind>K' with kind in "
                             f"{SPACING_KINDS + ('ddim', )}, '10,15,20' or a list of indices")
        spacing = int(text)
    if isinstance(spacing, (int, np.integer)):
        count = int(spacing)
        if not 1 <= count <= num_timesteps:
            raise ValueError(f'space_timesteps: step count must be in [1, {num_timesteps}], '
                             f'found {count}')
        return _linspace(num_timesteps, count)
    kept = np.unique(np.asarray(list(spacing), dtype=np.int64))
    if kept.size == 0 or kept[0] < 0 or kept[-1] >= num_timesteps:
        raise ValueError(f'space_timesteps: indices must be non-empty and in '
                         f'[0, {num_timesteps - 1}], found {kept.tolist()[:8]}...')
    return kept


# ---------------------------------------------------------------- rules of '<kind>K' spacings
# Each rule maps (N, K, alphas_cumprod or None, the spacing as given) to the kept indices;
# K is already checked to lie in [1, N]. See :func:`space_timesteps` for what each means.
def _linspace(num_timesteps: int, count: int, *_) -> np.ndarray:
    """K steps evenly spread over [0, N-1], both ends included (rounded); K = 1: [N-1]."""
    if count == 1:
        return np.array([num_timesteps - 1], dtype=np.int64)
    return np.unique(np.round(np.linspace(0, num_timesteps - 1, count)).astype(np.int64))


def _ddim(num_timesteps: int, count: int, _abar, spacing) -> np.ndarray:
    """``range(0, N, stride)`` with the integer stride that gives exactly K steps."""
    for stride in range(1, num_timesteps + 1):
        if len(range(0, num_timesteps, stride)) == count:
            return np.arange(0, num_timesteps, stride, dtype=np.int64)
    raise ValueError(f'space_timesteps: no integer stride gives exactly {count} of '
                     f'{num_timesteps} steps for {spacing!r}')


def _leading(num_timesteps: int, count: int, *_) -> np.ndarray:
    """``arange(K) * (N // K)``."""
    return np.arange(count, dtype=np.int64) * (num_timesteps // count)


def _trailing(num_timesteps: int, count: int, *_) -> np.ndarray:
    """``round(arange(N, 0, -N / K)) - 1``."""
    kept = np.round(np.arange(num_timesteps, 0, -num_timesteps / count)) - 1
    return np.unique(kept.astype(np.int64))


def _power_rule(power: int):
    """t_k = round((k / (K-1))^power (N-1)), bumped apart to stay distinct."""
    def rule(num_timesteps: int, count: int, *_) -> np.ndarray:
        grid = np.linspace(0, 1, count)**power * (num_timesteps - 1)
        return _strictly_increasing(np.round(grid).astype(np.int64), num_timesteps)
    return rule


def _logsnr(num_timesteps: int, count: int, alphas_cumprod, spacing) -> np.ndarray:
    """K steps uniform in lambda = log(a / s); below ``LOGSNR_MIN`` only the top step."""
    if alphas_cumprod is None:
        raise ValueError(f'space_timesteps: {spacing!r} needs alphas_cumprod')
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    lam = 0.5 * (np.log(abar) - np.log1p(-abar))  # decreasing in t
    if count == num_timesteps:
        return np.arange(num_timesteps, dtype=np.int64)
    low, top = lam[-1], []
    if lam[-1] < LOGSNR_MIN and count > 2:
        # the top step (the sampler's start) jumps straight to LOGSNR_MIN
        low, top, count = LOGSNR_MIN, [num_timesteps - 1], count - 1
    targets = np.linspace(low, lam[0], count)
    grid = np.interp(targets, lam[::-1], np.arange(num_timesteps)[::-1].astype(float))
    grid = np.concatenate([np.round(grid).astype(np.int64), top]).astype(np.int64)
    return _strictly_increasing(grid, num_timesteps)


# '<kind>K' prefix -> rule (no prefix is a prefix of another, so the order does not matter)
_KIND_RULES = {'ddim': _ddim, 'linspace': _linspace, 'leading': _leading,
               'trailing': _trailing, 'quad': _power_rule(2), 'cubic': _power_rule(3),
               'logsnr': _logsnr}


def _count(text: str, num_timesteps: int, spacing) -> int:
    if not text.isdigit() or not 1 <= int(text) <= num_timesteps:
        raise ValueError(f'space_timesteps: cannot parse a step count in [1, {num_timesteps}] '
                         f'from {spacing!r}')
    return int(text)


def _strictly_increasing(kept: np.ndarray, num_timesteps: int) -> np.ndarray:
    """Bump rounded indices apart so that K requested steps give K distinct indices."""
    kept = np.sort(kept)
    for k in range(1, kept.size):
        kept[k] = max(kept[k], kept[k - 1] + 1)
    kept[-1] = min(kept[-1], num_timesteps - 1)
    for k in range(kept.size - 2, -1, -1):
        kept[k] = min(kept[k], kept[k + 1] - 1)
    return kept


def _sectioned(num_timesteps: int, counts: Sequence[int]) -> np.ndarray:
    """Improved-DDPM style sections: equal parts of [0, N), ``counts[i]`` steps from part i."""
    size, extra = divmod(num_timesteps, len(counts))
    kept, start = [], 0
    for i, count in enumerate(counts):
        length = size + (1 if i < extra else 0)
        if not 1 <= count <= length:
            raise ValueError(f'space_timesteps: section {i} has {length} steps, '
                             f'cannot take {count}')
        offsets = np.round(np.linspace(0, length - 1, count)) if count > 1 else np.zeros(1)
        kept.extend(start + offsets.astype(np.int64))
        start += length
    return np.unique(np.asarray(kept, dtype=np.int64))


class NoiseSchedule:
    """All per-step coefficients of one chain, derived from its ``alphas_cumprod``.

    Index ``i`` of every array is a position in THIS chain; ``timesteps[i]`` is the
    original timestep index the network sees. For the full chain both coincide.

    Attributes (float64 tensors (K,) unless said otherwise):
        timesteps: int64 (K,) original indices.
        alphas_cumprod: abar_i; alphas_cumprod_prev: abar_{i-1} (1 at i = 0).
        betas: 1 - abar_i / abar_{i-1}.
        sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod: a_i and s_i of
            x_i = a_i x0 + s_i eps.
        posterior_variance: beta~_i = beta_i (1 - abar_{i-1}) / (1 - abar_i).
        posterior_log_variance_clipped: log beta~ with the i = 0 value (0) replaced by i = 1.
        posterior_mean_coef1, posterior_mean_coef2: mu~ = coef1 x0 + coef2 x_i.
        log_snr: lambda_i = log(a_i / s_i).
    """

    def __init__(self, alphas_cumprod, timesteps=None):
        abar = torch.as_tensor(np.asarray(alphas_cumprod, dtype=np.float64))
        if abar.ndim != 1 or abar.numel() < 1:
            raise ValueError(f'NoiseSchedule: alphas_cumprod must be 1-D and non-empty, '
                             f'found shape {tuple(abar.shape)}')
        if not (torch.all(abar > 0) and torch.all(abar < 1)
                and torch.all(abar[1:] < abar[:-1])):
            raise ValueError('NoiseSchedule: alphas_cumprod must be strictly decreasing '
                             'inside (0, 1)')
        if timesteps is None:
            timesteps = np.arange(abar.numel())
        self.timesteps = torch.as_tensor(np.asarray(timesteps, dtype=np.int64))
        if self.timesteps.shape != abar.shape:
            raise ValueError(f'NoiseSchedule: {self.timesteps.numel()} timesteps for '
                             f'{abar.numel()} alphas_cumprod')
        one = torch.ones(1, dtype=torch.float64)
        self.num_steps = abar.numel()
        self.alphas_cumprod = abar
        self.alphas_cumprod_prev = torch.cat([one, abar[:-1]])
        self.betas = 1 - abar / self.alphas_cumprod_prev
        self.sqrt_alphas_cumprod = abar.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1 - abar).sqrt()
        self.log_snr = 0.5 * (abar.log() - torch.log1p(-abar))
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - abar)
        if self.num_steps > 1:
            clipped = torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
        else:
            clipped = self.betas.clone()
        self.posterior_log_variance_clipped = clipped.log()
        self.posterior_mean_coef1 = self.betas * self.alphas_cumprod_prev.sqrt() / (1 - abar)
        self.posterior_mean_coef2 = (1 - self.alphas_cumprod_prev) * (1 - self.betas).sqrt() / (
            1 - abar)

    @classmethod
    def from_betas(cls, betas) -> 'NoiseSchedule':
        """The full chain of a beta sequence: abar_t = prod_{s <= t} (1 - beta_s)."""
        return cls(np.cumprod(1.0 - np.asarray(betas, dtype=np.float64)))

    def respace(self, kept) -> 'NoiseSchedule':
        """The chain restricted to positions ``kept`` (ascending indices into this chain)."""
        kept = torch.as_tensor(np.asarray(kept, dtype=np.int64))
        return NoiseSchedule(self.alphas_cumprod[kept].numpy(), self.timesteps[kept].numpy())

    def positions(self, t: torch.Tensor) -> torch.Tensor:
        """Positions in this chain (int64, t's shape, on the CPU) of original timesteps ``t``.

        Raises:
            ValueError: a timestep this chain does not keep (naming the first few).
        """
        flat = t.detach().cpu().long()
        pos = torch.searchsorted(self.timesteps, flat).clamp(max=self.num_steps - 1)
        off = self.timesteps[pos] != flat
        if bool(off.any()):
            raise ValueError(f'NoiseSchedule: timesteps {flat[off].unique()[:8].tolist()} are '
                             f'not on this chain of {self.num_steps} steps (kept timesteps '
                             f'{self.timesteps[:8].tolist()}...)')
        return pos

    def gather(self, name: str, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``self.<name>[index]`` shaped (B, 1, ..., 1) to broadcast against ``like``.

        Args:
            name: attribute name, e.g. ``'sqrt_alphas_cumprod'``.
            index: int64 (B,) positions in this chain.
            like: tensor (B, ...) giving the target rank, dtype and device.
        """
        values = getattr(self, name)[index.detach().cpu().long()]
        return values.to(device=like.device, dtype=like.dtype).reshape(
            (-1, ) + (1, ) * (like.ndim - 1))  # (B, 1, ..., 1)
