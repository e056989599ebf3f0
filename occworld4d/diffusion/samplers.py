"""Sampling loops: ancestral DDPM, DDIM, DPM-Solver++ (2M, 3M) and UniPC on any (respaced)
chain, and the sampler registry.

Every sampler walks the positions i = K-1 .. 0 of a :class:`NoiseSchedule` (the network
sees the original timestep ``chain.timesteps[i]``) and one ``step`` maps x at position i to
position i-1 (position -1 = the clean sample). The same loop (:func:`sample_loop`) handles
guidance, inpainting (with RePaint re-noising moves) and padding masks, so every sampler
supports all of them. Chain positions stay inside this loop: every engine method it calls
takes original timesteps.

A new sampler is one :class:`SamplerStep` subclass decorated with :func:`register_sampler`;
neither the loop nor the engine changes (docs/diffusion.md has an example).
"""
import math
from typing import Callable, Dict, NamedTuple, Optional, Type

import numpy as np
import torch
from tqdm import tqdm

from .common import check_mask
from .guidance import ClassifierFreeGuidance, repaint_moves
from .request import SampleRequest
from .schedules import SPACING_KINDS, NoiseSchedule


class Level(NamedTuple):
    """A noise level of the sampling path: x = a x0 + s eps with a = sqrt(abar).

    ``abar = 0`` is the pure-noise limit (a = 0, s = 1, lambda = -inf), where
    x ~ N(0, I) holds exactly.
    """
    abar: float

    @property
    def a(self) -> float:
        return math.sqrt(self.abar)

    @property
    def s(self) -> float:
        return math.sqrt(1.0 - self.abar)

    @property
    def lam(self) -> float:
        """log-SNR / 2 = log(a / s); -inf at abar = 0."""
        return -math.inf if self.abar == 0 else 0.5 * (math.log(self.abar) -
                                                       math.log1p(-self.abar))


class SamplerStep:
    """One reverse step of a sampler: ``step(x, p, cur, nxt, lam_eval, noise_fn) -> x_next``.

    Args of the call: ``x`` (B, C, ...) at level ``cur``; ``p`` the dict of
    :meth:`GaussianDiffusion.p_mean_variance` at x (mean, log_variance, x0, eps) from the
    network called at its chain timestep, whose log-SNR is ``lam_eval``; ``nxt`` the
    :class:`Level` of the next position, or None for the final step to the clean sample;
    ``noise_fn()`` a fresh N(0, I) draw of x's shape from the sampler's generator.

    ``cur`` is the chain level of the position, except on the first step of a chain
    started at zero SNR (``start_at_zero_snr``): there ``cur.abar = 0`` (x_T ~ N(0, I) is
    exact only there) while the network was called at the chain's top timestep.
    ``start(chain)`` is called once before the first step with the sampling chain
    (:class:`NoiseSchedule`); ``reset()`` forgets any multistep history (called after a
    RePaint jump). The constructor takes ``eta`` and the request's ``options``.

    A subclass becomes a sampler with :func:`register_sampler` (docs/diffusion.md, 'Adding a
    sampler').
    """

    # set by :func:`register_sampler`
    name: str = ''
    default_spacing: str = 'linspace'
    schedule_spacing: Dict[str, str] = {}

    def __init__(self, eta: float = 0.0):
        self.eta = float(eta)

    def start(self, chain):
        pass

    def reset(self):
        pass

    @staticmethod
    def eps_at(x, x0, cur: Level, p):
        """The noise implied at level ``cur`` by the prediction x0: (x - a x0) / s."""
        return x if cur.abar == 0 else p['eps']


# sampler name -> step class, in registration order; filled by :func:`register_sampler`.
SAMPLERS: Dict[str, Type[SamplerStep]] = {}


def register_sampler(name: str, default_spacing: str = 'linspace',
                     schedule_spacing: Optional[Dict[str, str]] = None,
                     force: bool = False) -> Callable[[type], type]:
    """Class decorator: register a :class:`SamplerStep` subclass under ``name``.

    Args:
        name: the ``sampler=`` name of :meth:`GaussianDiffusion.sample`.
        default_spacing: what a bare step count K means for this sampler (a kind of
            :data:`~occworld4d.diffusion.schedules.SPACING_KINDS`), unless the engine's
            ``timestep_spacing`` says otherwise.
        schedule_spacing: per beta schedule, a spacing overriding ``default_spacing``.
        force: replace a sampler already registered under ``name``.

    Raises:
        ValueError: ``name`` taken (without ``force``), a class that is not a SamplerStep,
            or an unknown spacing kind.
    """
    schedule_spacing = dict(schedule_spacing or {})
    bad = {k: v for k, v in dict(schedule_spacing, default=default_spacing).items()
           if v not in SPACING_KINDS}
    if bad:
        raise ValueError(f'register_sampler({name!r}): spacing {bad} not among {SPACING_KINDS}')

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, SamplerStep)):
            raise ValueError(f'register_sampler({name!r}): {cls!r} is not a SamplerStep '
                             'subclass')
        if name in SAMPLERS and SAMPLERS[name] is not cls and not force:
            raise ValueError(f'register_sampler: {name!r} is already registered '
                             f'({SAMPLERS[name].__name__}); pass force=True to replace it')
        cls.name = name
        cls.default_spacing = default_spacing
        cls.schedule_spacing = schedule_spacing
        SAMPLERS[name] = cls
        return cls

    return decorate


def spacing_of(sampler: str, beta_schedule: str) -> str:
    """The registered spacing of a bare step count for ``sampler`` on ``beta_schedule``."""
    cls = SAMPLERS[sampler]
    return cls.schedule_spacing.get(beta_schedule, cls.default_spacing)


def build_step(sampler: str, eta: float = 0.0, options: Optional[dict] = None) -> SamplerStep:
    """A fresh step object of a registered sampler: ``SAMPLERS[sampler](eta=eta, **options)``.

    Raises:
        ValueError: an unknown sampler, or options its class does not take.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f'GaussianDiffusion.sample: unknown sampler {sampler!r}; '
                         f'expected one of {tuple(SAMPLERS)}')
    try:
        return SAMPLERS[sampler](eta=eta, **dict(options or {}))
    except TypeError as err:
        raise ValueError(f'GaussianDiffusion.sample: sampler {sampler!r} '
                         f'({SAMPLERS[sampler].__name__}) does not take the options '
                         f'{sorted(options or {})}: {err}') from err


@register_sampler('ddpm')
class DDPMStep(SamplerStep):
    """Ancestral sampling: x_{i-1} = mu(x_i, x0_hat) + sigma_i z (no noise to the clean end).

    From zero SNR the posterior q(x_{i-1} | x_T, x0) no longer depends on x_T:
    x_{i-1} = a_{i-1} x0_hat + s_{i-1} z (fixed, learned and small variances agree there).
    """

    def __call__(self, x, p, cur, nxt, lam_eval, noise_fn):
        if nxt is None:
            return p['mean']
        if cur.abar == 0:
            return nxt.a * p['x0'] + nxt.s * noise_fn()
        return p['mean'] + (0.5 * p['log_variance']).exp() * noise_fn()


@register_sampler('ddim')
class DDIMStep(SamplerStep):
    """DDIM: x_{i-1} = a_{i-1} x0_hat + sqrt(1 - abar_{i-1} - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - abar_{i-1}) / (1 - abar_i)) sqrt(1 - abar_i / abar_{i-1}).

    A first-order solver of the probability-flow ODE (eta = 0): its error falls as 1 / K.
    """

    def __call__(self, x, p, cur, nxt, lam_eval, noise_fn):
        if nxt is None:
            return p['x0']
        eps = self.eps_at(x, p['x0'], cur, p)
        var = self.eta**2 * (1 - nxt.abar) / (1 - cur.abar) * (1 - cur.abar / nxt.abar)
        x = nxt.a * p['x0'] + max(1 - nxt.abar - var, 0.0)**0.5 * eps
        if self.eta > 0:
            x = x + var**0.5 * noise_fn()
        return x


@register_sampler('dpmpp_2m', default_spacing='cubic',
                  schedule_spacing=dict(linear='cubic', scaled_linear='quad',
                                        cosine='trailing'))
class DPMSolverPP2MStep(SamplerStep):
    """DPM-Solver++(2M), data-prediction form, lambda = log(a / s):

    x_{i-1} = (s_{i-1} / s_i) x_i - a_{i-1} (exp(-h) - 1) D, h = lambda_{i-1} - lambda_i,
    D = x0_i (first step) or (1 + 1/(2r)) x0_i - 1/(2r) x0_{i+1}, r = h_prev / h with
    h_prev the log-SNR gap between the two network calls. Second order; the step to the
    clean sample (lambda = inf) returns x0_0. (The multistep loop also serves
    :class:`DPMSolverPP3MStep`, ``order = 3``.)
    """

    order = 2  # highest order; the first steps are lower (warm-up from the history)

    def __init__(self, eta: float = 0.0):
        super().__init__(eta)
        self.reset()

    def reset(self):
        self.history = []  # [(lambda of the call, x0 (B, C, ...))], most recent last

    def _step_order(self, nxt) -> int:
        """The order of the step to ``nxt``: limited by the calls made so far (warm-up)."""
        return min(self.order, len(self.history))

    def __call__(self, x, p, cur, nxt, lam_eval, noise_fn):
        x0 = p['x0']
        if nxt is None:  # lambda = inf: the first-order step to the clean end is x0 itself
            self.reset()
            return x0
        self.history = (self.history + [(lam_eval, x0)])[-self.order:]
        h = nxt.lam - cur.lam  # inf from zero SNR (then no history yet: first order)
        x_scaled = (nxt.s / cur.s) * x
        order = self._step_order(nxt)
        if order == 1:
            return x_scaled - nxt.a * math.expm1(-h) * x0
        if order == 2:
            r = (lam_eval - self.history[-2][0]) / h
            data = (1 + 0.5 / r) * x0 - (0.5 / r) * self.history[-2][1]
            return x_scaled - nxt.a * math.expm1(-h) * data
        return x_scaled + self._third_order_terms(x0, lam_eval, h, nxt)

    def _third_order_terms(self, x0, lam_eval, h, nxt):
        """- a_n phi_1 x0_0 + a_n phi_2 D1 - a_n phi_3 D2 of :class:`DPMSolverPP3MStep`."""
        (lam_2, x0_2), (lam_1, x0_1) = self.history[-3], self.history[-2]
        r0, r1 = (lam_eval - lam_1) / h, (lam_1 - lam_2) / h
        d1_0, d1_1 = (x0 - x0_1) / r0, (x0_1 - x0_2) / r1
        d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
        d2 = 2 * (d1_0 - d1_1) / (r0 + r1)
        phi_1 = math.expm1(-h)
        phi_2 = phi_1 / h + 1
        phi_3 = (phi_1 + h) / h**2 - 0.5
        return nxt.a * (-phi_1 * x0 + phi_2 * d1 - phi_3 * d2)


@register_sampler('dpmpp_3m', default_spacing='logsnr')
class DPMSolverPP3MStep(DPMSolverPP2MStep):
    """DPM-Solver++(3M) (Lu et al. 2022, multistep third order), data-prediction form.

    The exact step of the probability-flow ODE is x_n = (s_n / s_0) x + s_n int_{lambda_0}^
    {lambda_n} e^lambda x0(lambda) d lambda. 3M replaces x0(lambda) by the quadratic through
    the last three calls x0_0 (now, lambda_0), x0_1, x0_2 (earlier) and integrates it exactly.
    With h = lambda_n - lambda_0, r_0 = (lambda_0 - lambda_1) / h, r_1 = (lambda_1 -
    lambda_2) / h:

        D1_0 = (x0_0 - x0_1) / r_0,  D1_1 = (x0_1 - x0_2) / r_1
        D1 = D1_0 + r_0 / (r_0 + r_1) (D1_0 - D1_1)       (= h x0'  for a quadratic)
        D2 = 2 (D1_0 - D1_1) / (r_0 + r_1)                (= h^2 x0'' for a quadratic)
        x_n = (s_n / s_0) x - a_n phi_1 x0_0 + a_n phi_2 D1 - a_n phi_3 D2
        phi_1 = exp(-h) - 1,  phi_2 = phi_1 / h + 1,  phi_3 = (phi_1 + h) / h^2 - 1/2

    Exact when x0 is quadratic in lambda (local error O(h^4), third order). The reference
    multistep code uses D2 without the factor 2 (h^2 x0'' / 2: exact only up to linear x0,
    local error O(h^3)); on the Gaussian benchmark that version is less accurate at 20
    steps on every schedule (law W2 0.0057 / 0.0129 / 0.0047 at its best spacing against
    0.0039 / 0.0048 / 0.0032, linear / cosine / scaled-linear) and converges ~5x per step
    doubling instead of > 15x.

    Warm-up: the first step is first order, the second the 2M step. The step to the clean
    sample (lambda = inf, where no polynomial in lambda can be integrated) returns x0 (first
    order), and on chains shorter than ``LOWER_ORDER_FINAL_BELOW`` the step before it is 2M
    as well, as in the reference's ``lower_order_final`` (stability at few steps). Third
    order pays off from ~15 steps; below ~12, DPM-Solver++(2M) is more accurate. ``eta`` is
    ignored (deterministic).
    """

    order = 3
    # chains shorter than this take a second-order step just before the final x0 step
    LOWER_ORDER_FINAL_BELOW = 15

    def __init__(self, eta: float = 0.0):
        super().__init__(eta)
        self.lower_order_at = None

    def start(self, chain):
        super().start(chain)
        # the level of chain position 0, reached by the last step before the final one
        self.lower_order_at = (float(chain.alphas_cumprod[0])
                               if chain.num_steps < self.LOWER_ORDER_FINAL_BELOW else None)

    def _step_order(self, nxt) -> int:
        order = super()._step_order(nxt)
        if self.lower_order_at is not None and nxt.abar == self.lower_order_at:
            order = min(order, 2)
        return order


@register_sampler('unipc', default_spacing='logsnr')
class UniPCStep(SamplerStep):
    """UniPC (Zhao et al. 2023), data prediction, B(h) = exp(-h) - 1 ('bh2').

    Each step is a predictor (UniP-p, multistep order p <= ``order`` from the x0 history)
    and, once the network has been called at the predicted point, a corrector (UniC-p)
    that re-does the step with that new x0 as well: order p + 1 at no extra network call
    (the network is not called again at the corrected point). With h = lambda_n - lambda_c,
    r_k = (lambda_k - lambda_c) / h of earlier calls and D_k = (x0_k - x0_c) / r_k:

        x_n = (s_n / s_c) x_c - a_n (exp(-h) - 1) x0_c - a_n B(h) sum_k rho_k D_k

    where rho solves sum_k rho_k r_k^(j-1) = phi_j(h) j! / B(h), phi_1 = (exp(-h) - 1) / (-h)
    - 1, phi_{j+1} = phi_j / (-h) - 1 / (j+1)!, j = 1..p (UniP-2 is exactly DPM-Solver++(2M),
    UniC-1 uses rho = 1/2). The step to the clean sample returns the last x0.

    Deterministic (``eta`` is ignored, as for ``dpmpp_2m``).

    Args:
        order: highest predictor order (3: the most accurate measured; 2 for strongly guided
            sampling, where lower orders are more stable).
    """

    def __init__(self, eta: float = 0.0, order: int = 3):
        super().__init__(eta)
        if order not in (1, 2, 3):
            raise ValueError(f'UniPC: solver_order must be 1, 2 or 3, found {order!r}')
        self.order = order
        self.reset()

    def reset(self):
        self.history = []  # [(lambda of the call, x0 (B, C, ...))], most recent last
        self.last = None  # (x at the start of the last step, its Level, the order used)

    @staticmethod
    def _rhos(rks, h, count):
        """rho solving sum_k rho_k r_k^(j-1) = phi_j(h) j! / B(h), j = 1..count."""
        hh = -h
        b_h = math.expm1(hh)
        phi, fact, rows, rhs = math.expm1(hh) / hh - 1, 1, [], []
        for j in range(1, count + 1):
            rows.append([r**(j - 1) for r in rks])
            rhs.append(phi * fact / b_h)
            fact *= j + 1
            phi = phi / hh - 1 / fact
        return np.linalg.solve(np.array(rows), np.array(rhs)).tolist()

    def _update(self, x, cur, nxt, x0_c, diffs, rhos):
        """x_n = (s_n / s_c) x - a_n (exp(-h) - 1) x0_c - a_n B(h) sum_k rho_k D_k."""
        h = nxt.lam - cur.lam
        out = (nxt.s / cur.s) * x - (nxt.a * math.expm1(-h)) * x0_c
        for rho, diff in zip(rhos, diffs):
            out = out - (nxt.a * math.expm1(-h) * rho) * diff
        return out

    def _diffs(self, lam_c, x0_c, h, count):
        """r_k and D_k = (x0_k - x0_c) / r_k of the ``count`` calls before the current."""
        rks, diffs = [], []
        for lam_k, x0_k in self.history[-1 - count:-1][::-1]:
            r = (lam_k - lam_c) / h
            rks.append(r)
            diffs.append((x0_k - x0_c) / r)
        return rks, diffs

    def __call__(self, x, p, cur, nxt, lam_eval, noise_fn):
        x0 = p['x0']
        if self.last is not None:  # UniC: redo the last step with the new x0 as well
            x_c, lev_c, used = self.last
            lam_c, x0_c = self.history[-1]
            h = cur.lam - lev_c.lam
            if math.isfinite(h):
                rks, diffs = self._diffs(lam_c, x0_c, h, used - 1)
                rhos = [0.5] if used == 1 else self._rhos(rks + [1.0], h, used)
                x = self._update(x_c, lev_c, cur, x0_c, diffs + [x0 - x0_c], rhos)
            else:  # from zero SNR, x0 linear in lambda through both calls:
                # x = s x_c + a (x0 - (x0 - x0_c) / (lambda - lambda_c)), exact integral
                x = cur.s * x_c + cur.a * (x0 - (x0 - x0_c) / (lam_eval - lam_c))
        self.history = (self.history + [(lam_eval, x0)])[-self.order:]
        if nxt is None:
            self.reset()
            return x0
        h = nxt.lam - cur.lam
        if not math.isfinite(h):  # from zero SNR: x_n = s_n x + a_n x0
            self.last = (x, cur, 1)
            return nxt.s * x + nxt.a * x0
        used = min(self.order, len(self.history))
        rks, diffs = self._diffs(lam_eval, x0, h, used - 1)
        if used == 1:
            rhos = []
        elif used == 2:
            rhos = [0.5]
        else:
            rhos = self._rhos(rks, h, used - 1)
        self.last = (x, cur, used)
        return self._update(x, cur, nxt, x0, diffs, rhos)


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


def _loop_tensors(request: SampleRequest):
    """(device, known, known_mask, valid_mask) of a request: validated, on the samples'
    device (known in the samples' dtype, the masks bool); None where not given."""
    shape, inpaint = request.shape, request.inpainting
    known = known_mask = valid_mask = None
    if inpaint is not None and tuple(inpaint.known.shape) != tuple(shape):
        raise ValueError(f'GaussianDiffusion.sample: known has shape '
                         f'{tuple(inpaint.known.shape)}, expected {tuple(shape)}')
    device = _pick_device(request.device, inpaint.known if inpaint else None, request.cond,
                          request.generator)
    if inpaint is not None:
        known = inpaint.known.to(device, request.dtype)
        known_mask = check_mask(inpaint.mask, shape, 'known_mask', device).bool()
    if request.valid_mask is not None:
        valid_mask = check_mask(request.valid_mask, shape, 'valid_mask', device).bool()
    return device, known, known_mask, valid_mask


@torch.no_grad()
def sample_loop(engine, model: Callable, request: SampleRequest, chain: NoiseSchedule,
                start_at_zero_snr: bool = False) -> torch.Tensor:
    """The shared sampling loop behind :meth:`GaussianDiffusion.sample_request`.

    Args:
        engine: the :class:`GaussianDiffusion`; the loop calls only its public
            ``p_mean_variance`` and ``q_sample``, with original timesteps.
        model: the denoiser, ``model(x_t, t, **cond)``.
        request: what to sample (:class:`~occworld4d.diffusion.request.SampleRequest`).
        chain: the (respaced) sampling chain.
        start_at_zero_snr: read the top position of the chain as the pure-noise level
            abar = 0, where x_T ~ N(0, I) is exact: the network is still called at the
            chain's top timestep, but the first step integrates from abar = 0 (and a RePaint
            jump back to the top re-draws pure noise). Without it, x_T ~ N(0, I) stands for
            the marginal at abar_T > 0, whose mean a_T E[x0] it lacks: a deterministic
            sampler carries that mismatch to its samples (law W2 ~0.01 on the linear
            schedule's benchmark).

    Returns:
        (B, C, ...) samples.
    """
    shape, dtype, cond, generator = request.shape, request.dtype, request.cond, request.generator
    device, known, known_mask, valid_mask = _loop_tensors(request)
    inpaint = request.inpainting
    jumps, jump_length = (inpaint.resample_jumps, inpaint.resample_steps) if inpaint else (1, 1)

    def noise_fn():
        return torch.randn(shape, generator=generator,
                           device=generator.device if generator is not None else device,
                           dtype=dtype).to(device)

    denoiser = ClassifierFreeGuidance(model, cond, request.guidance.scale, request.guidance.keys)
    step = build_step(request.sampler, request.eta, request.options)
    step.start(chain)
    batch = shape[0]
    top = chain.num_steps - 1
    zero_top = bool(start_at_zero_snr) and top > 0

    def level(pos):
        """The Level of chain position ``pos`` (None = the clean sample)."""
        if pos < 0:
            return None
        return Level(0.0 if (zero_top and pos == top) else float(chain.alphas_cumprod[pos]))

    def timestep(pos):
        """The original timestep of chain position ``pos`` for the whole batch: int64 (B,)."""
        return torch.full((batch, ), int(chain.timesteps[pos]), dtype=torch.int64,
                          device=device)

    def constrain(x, pos):
        """Impose the known region at chain position ``pos`` (-1 = clean) and the padding."""
        if known is not None:
            target = known if pos < 0 else engine.q_sample(known, timestep(pos), noise_fn())
            x = torch.where(known_mask, target, x)
        if valid_mask is not None:
            x = torch.where(valid_mask, x, torch.zeros_like(x))
        return x

    if request.x_T is None:
        x = noise_fn()
    else:
        if tuple(request.x_T.shape) != tuple(shape):
            raise ValueError(f'GaussianDiffusion.sample: x_T has shape '
                             f'{tuple(request.x_T.shape)}, expected {tuple(shape)}')
        x = request.x_T.to(device, dtype)
    x = constrain(x, chain.num_steps - 1)
    moves = repaint_moves(chain.num_steps, jump_length, jumps)
    for kind, src, dst in tqdm(moves, disable=not request.progress,
                               desc=f'{request.sampler} sampling'):
        if kind == 'up':  # re-noise from position src to dst > src: q(x_dst | x_src)
            ratio = level(dst).abar / level(src).abar
            x = ratio**0.5 * x + (1 - ratio)**0.5 * noise_fn()
            step.reset()
        else:
            t = timestep(src)
            output = denoiser(x, t)
            p = engine.p_mean_variance(output.to(dtype), x, t, chain, clip_x0=request.clip_x0)
            x = step(x, p, level(src), level(dst), float(chain.log_snr[src]), noise_fn)
        x = constrain(x, dst)
    return x
