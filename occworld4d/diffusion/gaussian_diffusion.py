"""The one Gaussian-diffusion engine of occworld4d: forward process, losses, sampling entry.

The engine never owns a network. It calls ``model(x_t, t, **cond)`` where ``x_t`` is
(B, C, ...) with any trailing dims, ``t`` is int64 (B,) ORIGINAL timestep indices (0..N-1,
also when sampling on a respaced chain) and ``cond`` is passed through untouched (the reserved
key ``drop`` maps a condition name to a bool (B,) tensor, True = use the null embedding).
The network returns (B, C, ...) or, with ``learn_sigma``, (B, 2C, ...): first C channels the
prediction (eps, x0 or v), last C the learned-range variance value v in [-1, 1] of improved
DDPM: log var = (v+1)/2 log beta_t + (1-(v+1)/2) log beta~_t.

Notation: abar_t = prod_{s<=t} (1 - beta_s); a_t = sqrt(abar_t); s_t = sqrt(1 - abar_t);
x_t = a_t x0 + s_t eps; v = a_t eps - s_t x0.

One index space: every ``t`` the engine's methods take or the network sees is an ORIGINAL
timestep index in [0, N). A respaced chain (:class:`NoiseSchedule` of
:meth:`GaussianDiffusion.schedule_for`) is a subset of those timesteps; the methods that
depend on the chain (the posterior and the reverse step) take it as ``chain=`` and find
the positions of ``t`` in it themselves (:meth:`NoiseSchedule.positions`). Positions in a
chain exist only inside the sampling loop and ``NoiseSchedule``.

Sampling: ``sample_request(model, SampleRequest)``, or its keyword form ``sample``; samplers
are registered with :func:`~occworld4d.diffusion.samplers.register_sampler` (docs/diffusion.md).
"""
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from occworld4d.registry import DIFFUSION
from .common import check_mask, randn_like
from .losses import (NATS_PER_BIT, discretized_gaussian_log_likelihood, masked_mean,
                     normal_kl)
from .guidance import repaint_moves
from .request import ChainSpec, Guidance, Inpainting, SampleRequest
from .samplers import SAMPLERS, sample_loop, spacing_of
from .schedules import SPACING_KINDS, NoiseSchedule, make_betas, space_timesteps

PREDICTION_TYPES = ('eps', 'x0', 'v')
LOSS_TYPES = ('mse', 'hybrid')
FIXED_VARIANCES = ('large', 'small')
VB_AVERAGES = ('valid', 'all')


@DIFFUSION.register_module()
class GaussianDiffusion:
    """Gaussian diffusion (DDPM / improved DDPM) with DDPM, DDIM, DPM-Solver++ (2M, 3M) and
    UniPC sampling.

    Args:
        num_timesteps: N, length of the training chain.
        beta_schedule: ``'linear'`` (default), ``'cosine'`` or ``'scaled_linear'``.
        beta_start: first beta of the linear schedules.
        beta_end: last beta of the linear schedules.
        prediction_type: what the network predicts: ``'eps'``, ``'x0'`` or ``'v'``.
        learn_sigma: the network also outputs C learned-range variance channels.
        loss_type: ``'mse'`` or ``'hybrid'`` (MSE + variational bound with a stop-gradient
            on the mean, improved DDPM / DiT). Default: hybrid with ``learn_sigma``, else mse.
        fixed_variance: reverse variance without ``learn_sigma``: ``'large'`` (beta_t, DiT's
            default) or ``'small'`` (posterior variance beta~_t).
        timestep_respacing: default sampling chain when ``sample(num_steps=None)``: a step
            count, ``'ddimK'``, ``'10,15,20'`` sections or None (all N steps). See
            :func:`space_timesteps`.
        vb_bin_width: bin width of the discretized decoder likelihood at t = 0 (data in
            [-1, 1] with 256 levels: 2/255, as in improved DDPM / DiT).
        timestep_spacing: what a bare step count K (``sample(num_steps=K)``) means: one of
            ``'linspace'`` (both ends), ``'leading'``, ``'trailing'``, ``'quad'``,
            ``'cubic'``, ``'logsnr'`` (see :func:`space_timesteps`) for every sampler, or a
            dict {sampler: kind} overriding the per-sampler defaults: the most accurate
            measured, registered with each sampler (``register_sampler(default_spacing=,
            schedule_spacing=)``; DPM-Solver++(2M)'s depends on the beta schedule).
        start_at_zero_snr: read the top of every sampling chain as the pure-noise level
            abar = 0 (where x_T ~ N(0, I) is exact) and take the first step from there; the
            network is still called at its top timestep. Removes the terminal-SNR mismatch
            of the linear schedule (abar_999 = 4e-5) that deterministic samplers would carry
            to their samples; no extra network call, no retraining.
        vb_average: what the hybrid loss's VB averages over given a ``mask``: ``'valid'``
            (default) the valid elements, like the MSE; ``'all'`` every element, as
            3DTopia/DynamicCity @ eaf0c6e (``diffusion/gaussian_diffusion.py``,
            ``training_losses`` masks only the MSE). A masked element then counts with the
            reference network's output on padding (zeros) at the un-zeroed x_t: a constant,
            so the VB gradient is the ``'valid'`` one x valid / all elements (5664 / 5776 on
            DynamicCity's CarlaSC rollout).
    """

    def __init__(self,
                 num_timesteps: int = 1000,
                 beta_schedule: str = 'linear',
                 beta_start: float = 1e-4,
                 beta_end: float = 0.02,
                 prediction_type: str = 'eps',
                 learn_sigma: bool = False,
                 loss_type: Optional[str] = None,
                 fixed_variance: str = 'large',
                 timestep_respacing: Union[None, int, str, Sequence[int]] = None,
                 vb_bin_width: float = 2.0 / 255.0,
                 timestep_spacing: Union[None, str, Dict[str, str]] = None,
                 start_at_zero_snr: bool = True,
                 vb_average: str = 'valid'):
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f'GaussianDiffusion: prediction_type must be one of '
                             f'{PREDICTION_TYPES}, found {prediction_type!r}')
        if loss_type is None:
            loss_type = 'hybrid' if learn_sigma else 'mse'
        if loss_type not in LOSS_TYPES:
            raise ValueError(f'GaussianDiffusion: loss_type must be one of {LOSS_TYPES}, '
                             f'found {loss_type!r}')
        if learn_sigma != (loss_type == 'hybrid'):
            raise ValueError(
                'GaussianDiffusion: learn_sigma=True needs loss_type="hybrid" (the variance '
                'channels are trained only by the variational bound) and "hybrid" needs '
                f'learn_sigma=True; found learn_sigma={learn_sigma}, loss_type={loss_type!r}')
        if vb_average not in VB_AVERAGES:
            raise ValueError(f'GaussianDiffusion: vb_average must be one of {VB_AVERAGES}, '
                             f'found {vb_average!r}')
        if fixed_variance not in FIXED_VARIANCES:
            raise ValueError(f'GaussianDiffusion: fixed_variance must be one of '
                             f'{FIXED_VARIANCES}, found {fixed_variance!r}')
        self.num_timesteps = int(num_timesteps)
        self.beta_schedule = beta_schedule
        self.prediction_type = prediction_type
        self.learn_sigma = bool(learn_sigma)
        self.loss_type = loss_type
        self.fixed_variance = fixed_variance
        self.timestep_respacing = timestep_respacing
        self.vb_bin_width = vb_bin_width
        self.vb_average = vb_average
        spacing = {name: spacing_of(name, beta_schedule) for name in SAMPLERS}
        # a str applies to every sampler, also to one registered after this engine was built
        self._spacing_for_all = timestep_spacing if isinstance(timestep_spacing, str) else None
        if isinstance(timestep_spacing, str):
            spacing = {name: timestep_spacing for name in SAMPLERS}
        elif isinstance(timestep_spacing, dict):
            unknown = [k for k in timestep_spacing if k not in SAMPLERS]
            if unknown:
                raise ValueError(f'GaussianDiffusion: timestep_spacing names unknown samplers '
                                 f'{unknown}; expected keys among {tuple(SAMPLERS)}')
            spacing.update(timestep_spacing)
        elif timestep_spacing is not None:
            raise ValueError(f'GaussianDiffusion: timestep_spacing must be None, a str or a '
                             f'dict, found {type(timestep_spacing).__name__}')
        bad = {k: v for k, v in spacing.items() if v not in SPACING_KINDS}
        if bad:
            raise ValueError(f'GaussianDiffusion: timestep_spacing {bad} not among '
                             f'{SPACING_KINDS}')
        self.timestep_spacing = spacing
        self.start_at_zero_snr = bool(start_at_zero_snr)
        betas = make_betas(beta_schedule, self.num_timesteps, beta_start, beta_end)
        self.schedule = NoiseSchedule.from_betas(betas)
        if timestep_respacing is not None:
            self.timesteps_for(timestep_respacing)  # fail early on a bad spacing

    # ----------------------------------------------------------------- chains
    def timesteps_for(self, num_steps: Union[None, int, str, Sequence[int]] = None
                      ) -> torch.Tensor:
        """Original timestep indices (ascending int64 (K,)) of a sampling chain.

        Args:
            num_steps: a step count (linspace), ``'<kind>K'`` with kind ``linspace``,
                ``leading``, ``trailing``, ``quad``, ``cubic``, ``logsnr`` or ``ddim``,
                sections ``'10,15,20'``, explicit indices, or None: ``timestep_respacing`` if
                set, else all N steps. See :func:`space_timesteps` (and :meth:`steps_for` for
                what ``sample`` makes of a bare int).
        """
        if num_steps is None:
            num_steps = self.timestep_respacing
        if num_steps is None:
            return torch.arange(self.num_timesteps, dtype=torch.int64)
        return torch.from_numpy(
            space_timesteps(self.num_timesteps, num_steps, self.schedule.alphas_cumprod.numpy()))

    def schedule_for(self, num_steps=None) -> NoiseSchedule:
        """The (respaced) chain of ``timesteps_for(num_steps)``; its betas are
        ``1 - abar[k_i] / abar[k_{i-1}]`` so the kept marginals are unchanged."""
        kept = self.timesteps_for(num_steps)
        if kept.numel() == self.num_timesteps:
            return self.schedule
        return self.schedule.respace(kept.numpy())

    def _check_t(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Validate original timesteps ``t``: an int tensor (B,) with values in [0, N)."""
        if not torch.is_tensor(t) or t.ndim != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f'GaussianDiffusion: t must be an int tensor (B,) with '
                             f'B={x.shape[0]}, found '
                             f'{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}')
        if t.dtype.is_floating_point or int(t.min()) < 0 or \
                int(t.max()) >= self.num_timesteps:
            raise ValueError(f'GaussianDiffusion: t must be integer indices in '
                             f'[0, {self.num_timesteps - 1}], found dtype {t.dtype}, '
                             f'range [{t.min().item()}, {t.max().item()}]')
        return t

    def _positions(self, t: torch.Tensor, x: torch.Tensor,
                   chain: Optional[NoiseSchedule]) -> Tuple[NoiseSchedule, torch.Tensor]:
        """(chain, positions of the original timesteps ``t`` in it); default the full chain."""
        self._check_t(t, x)
        if chain is None or chain is self.schedule:
            return self.schedule, t
        return chain, chain.positions(t)

    # ----------------------------------------------------- forward process q
    def q_mean_variance(self, x0: torch.Tensor, t: torch.Tensor):
        """Moments of q(x_t | x_0) = N(a_t x0, (1 - abar_t) I).

        Args:
            x0: (B, C, ...) clean data. t: int64 (B,) timesteps.

        Returns:
            (mean (B, C, ...), variance (B, 1, ...), log_variance (B, 1, ...)).
        """
        s = self.schedule
        self._check_t(t, x0)
        mean = s.gather('sqrt_alphas_cumprod', t, x0) * x0
        var = 1 - s.gather('alphas_cumprod', t, x0)
        return mean, var, var.log()

    def q_sample(self,
                 x0: torch.Tensor,
                 t: torch.Tensor,
                 noise: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw x_t = a_t x0 + s_t noise (noise ~ N(0, I) when not given). Shapes (B, C, ...).

        ``t`` are original timesteps; the marginal q(x_t | x_0) is the same on every chain
        that keeps t, so no chain is needed.
        """
        self._check_t(t, x0)
        if noise is None:
            noise = randn_like(x0, generator)
        elif noise.shape != x0.shape:
            raise ValueError(f'GaussianDiffusion: noise shape {tuple(noise.shape)} != x0 shape '
                             f'{tuple(x0.shape)}')
        s = self.schedule
        return (s.gather('sqrt_alphas_cumprod', t, x0) * x0 +
                s.gather('sqrt_one_minus_alphas_cumprod', t, x0) * noise)

    def q_posterior_mean_variance(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                                  chain: Optional[NoiseSchedule] = None):
        """Moments of q(x_{t-1} | x_t, x_0), x_{t-1} being the chain's step before t.

        mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_{t-1}) /
        (1 - abar_t) x_t; variance = beta_t (1 - abar_{t-1}) / (1 - abar_t).

        Args:
            x0, x_t: (B, C, ...). t: int64 (B,) original timesteps, all on ``chain``.
            chain: the (respaced) chain; default the full one (on a respaced chain the
                coefficients are those of its betas 1 - abar_t / abar_prev).

        Returns:
            (mean (B, C, ...), variance (B, 1, ...), log_variance_clipped (B, 1, ...)); the
            log variance at the chain's first step (variance 0) is replaced by its second.
        """
        chain, index = self._positions(t, x_t, chain)
        mean = (chain.gather('posterior_mean_coef1', index, x_t) * x0 +
                chain.gather('posterior_mean_coef2', index, x_t) * x_t)
        return (mean, chain.gather('posterior_variance', index, x_t),
                chain.gather('posterior_log_variance_clipped', index, x_t))

    # -------------------------------------------------------- conversions
    # (at original timesteps t: a_t and s_t are the same on every chain that keeps t)
    def predict_x0_from_eps(self, x_t, t, eps):
        """x0 = (x_t - s_t eps) / a_t."""
        c = self.schedule
        return (x_t - c.gather('sqrt_one_minus_alphas_cumprod', t, x_t) * eps) / c.gather(
            'sqrt_alphas_cumprod', t, x_t)

    def predict_eps_from_x0(self, x_t, t, x0):
        """eps = (x_t - a_t x0) / s_t."""
        c = self.schedule
        return (x_t - c.gather('sqrt_alphas_cumprod', t, x_t) * x0) / c.gather(
            'sqrt_one_minus_alphas_cumprod', t, x_t)

    def predict_v(self, x0, eps, t):
        """v = a_t eps - s_t x0."""
        c = self.schedule
        return (c.gather('sqrt_alphas_cumprod', t, x0) * eps -
                c.gather('sqrt_one_minus_alphas_cumprod', t, x0) * x0)

    def predict_x0_from_v(self, x_t, t, v):
        """x0 = a_t x_t - s_t v."""
        c = self.schedule
        return (c.gather('sqrt_alphas_cumprod', t, x_t) * x_t -
                c.gather('sqrt_one_minus_alphas_cumprod', t, x_t) * v)

    def predict_eps_from_v(self, x_t, t, v):
        """eps = s_t x_t + a_t v."""
        c = self.schedule
        return (c.gather('sqrt_one_minus_alphas_cumprod', t, x_t) * x_t +
                c.gather('sqrt_alphas_cumprod', t, x_t) * v)

    def prediction_to_x0(self, pred, x_t, t):
        """x0 implied by a network prediction of ``prediction_type``."""
        if self.prediction_type == 'eps':
            return self.predict_x0_from_eps(x_t, t, pred)
        if self.prediction_type == 'x0':
            return pred
        return self.predict_x0_from_v(x_t, t, pred)

    def prediction_target(self, x0, noise, t):
        """The regression target of ``prediction_type`` for x_t = q_sample(x0, t, noise)."""
        if self.prediction_type == 'eps':
            return noise
        if self.prediction_type == 'x0':
            return x0
        return self.predict_v(x0, noise, t)

    # --------------------------------------------------------- reverse p
    def split_output(self, output: torch.Tensor, x_t: torch.Tensor):
        """Split a network output into (prediction (B, C, ...), variance values or None)."""
        channels = x_t.shape[1]
        expected = 2 * channels if self.learn_sigma else channels
        if output.shape[0] != x_t.shape[0] or output.shape[1] != expected or \
                output.shape[2:] != x_t.shape[2:]:
            raise ValueError(
                f'GaussianDiffusion: the model returned shape {tuple(output.shape)} for x_t '
                f'{tuple(x_t.shape)}; expected {(x_t.shape[0], expected) + tuple(x_t.shape[2:])}'
                f' (learn_sigma={self.learn_sigma})')
        if self.learn_sigma:
            return output[:, :channels], output[:, channels:]
        return output, None

    def p_mean_variance(self,
                        output: torch.Tensor,
                        x_t: torch.Tensor,
                        t: torch.Tensor,
                        chain: Optional[NoiseSchedule] = None,
                        clip_x0: Optional[float] = None,
                        detach_mean: bool = False) -> Dict[str, torch.Tensor]:
        """Moments of p(x_prev | x_t) from a network output, x_prev being the chain's step
        before t.

        Args:
            output: (B, C or 2C, ...) network output at x_t.
            x_t: (B, C, ...) noisy input.
            t: int64 (B,) original timesteps (what the network was called at), all on
                ``chain``.
            chain: the (respaced) chain; default the full one.
            clip_x0: clamp the predicted x0 to [-clip_x0, clip_x0] when set.
            detach_mean: stop the gradient into the mean (the VB term of the hybrid loss).

        Returns:
            dict with mean, variance, log_variance (B, C or 1, ...), x0 and eps (B, C, ...).
        """
        chain, index = self._positions(t, x_t, chain)
        pred, var_values = self.split_output(output, x_t)
        if detach_mean:
            pred = pred.detach()
        x0 = self.prediction_to_x0(pred, x_t, t)
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
        eps = self.predict_eps_from_x0(x_t, t, x0)
        mean, _, _ = self.q_posterior_mean_variance(x0, x_t, t, chain)
        log_small = chain.gather('posterior_log_variance_clipped', index, x_t)
        log_large = large_log_variance(chain, index, x_t)
        if var_values is not None:
            frac = (var_values + 1) / 2
            log_var = frac * log_large + (1 - frac) * log_small
        elif self.fixed_variance == 'large':
            log_var = log_large
        else:
            log_var = log_small
        return dict(mean=mean, variance=log_var.exp(), log_variance=log_var, x0=x0, eps=eps)

    # ------------------------------------------------------------ training
    def training_losses(self,
                        model: Callable,
                        x0: torch.Tensor,
                        t: Optional[torch.Tensor] = None,
                        cond: Optional[dict] = None,
                        mask: Optional[torch.Tensor] = None,
                        weights: Optional[torch.Tensor] = None,
                        noise: Optional[torch.Tensor] = None,
                        generator: Optional[torch.Generator] = None,
                        zero_masked_inputs: bool = False) -> Dict[str, torch.Tensor]:
        """Per-sample training losses at random (or given) timesteps.

        Args:
            model: ``model(x_t, t, **cond) -> (B, C or 2C, ...)``.
            x0: (B, C, ...) clean latents.
            t: int64 (B,) timesteps; None draws them uniformly from [0, N).
            cond: conditions passed to the model untouched (may hold ``drop``).
            mask: bool/float broadcastable to x0; nonzero = valid. MSE and VB are means over
                valid elements only; masked elements contribute exactly nothing (the VB:
                see ``vb_average``; with ``'all'`` a float mask counts as bool there).
            weights: (B,) per-sample weights applied to ``loss``.
            noise: (B, C, ...) the eps of q_sample; drawn when None.
            generator: RNG for t and noise.
            zero_masked_inputs: also set x_t to 0 where ``mask`` is 0 (what ``sample`` does
                with ``valid_mask``), for padding the network should see as constant.

        Returns:
            dict(loss=(B,), mse=(B,)[, vb=(B,)]): ``loss`` = (mse [+ vb]) * weights; mse and
            vb unweighted. VB in bits per valid element (per element with
            ``vb_average='all'``).
        """
        if not torch.is_tensor(x0) or x0.ndim < 2 or not x0.dtype.is_floating_point:
            raise ValueError(f'training_losses: x0 must be a float tensor (B, C, ...), found '
                             f'{getattr(x0, "shape", type(x0).__name__)}')
        batch = x0.shape[0]
        cond = dict(cond or {})
        if t is None:
            t = torch.randint(0, self.num_timesteps, (batch, ), generator=generator,
                              device='cpu' if generator is None else generator.device)
            t = t.to(x0.device)
        self._check_t(t, x0)
        if mask is not None:
            mask = check_mask(mask, x0.shape, 'mask', x0.device)
        if weights is not None and (weights.shape != (batch, )):
            raise ValueError(f'training_losses: weights must be (B,) = ({batch},), found '
                             f'{tuple(weights.shape)}')
        if noise is None:
            noise = randn_like(x0, generator)
        x_t = x_t_noised = self.q_sample(x0, t, noise)
        if mask is not None and zero_masked_inputs:
            x_t = torch.where(mask != 0, x_t, torch.zeros_like(x_t))
        output = model(x_t, t, **cond)
        pred, var_values = self.split_output(output, x_t)
        target = self.prediction_target(x0, noise, t)
        if mask is not None:
            # Replace the output in masked cells by a finite constant BEFORE any arithmetic,
            # so that inf/NaN there can reach neither the loss nor the gradient.
            valid = (mask != 0).expand_as(x0)
            pred = torch.where(valid, pred, target.detach())
            if var_values is not None:
                var_values = torch.where(valid, var_values, torch.zeros_like(var_values))
                output = torch.cat([pred, var_values], dim=1)
            else:
                output = pred
        mse = masked_mean((pred - target)**2, mask)
        losses = dict(mse=mse)
        total = mse
        if self.loss_type == 'hybrid':
            vb = self._vb_terms(output, x0, x_t_noised, t, mask)
            losses['vb'] = vb
            total = total + vb
        losses['loss'] = total if weights is None else total * weights.to(total.dtype)
        return losses

    def _vb_terms(self, output, x0, x_t, t, mask):
        """Per-sample variational bound term L_t in bits (decoder NLL at t = 0), mean-frozen;
        the mean over ``mask`` or, with ``vb_average='all'``, over every element."""
        if mask is not None and self.vb_average == 'all':  # padding outputs: the reference's 0
            valid = (mask != 0).expand_as(x0)
            output, mask = torch.where(torch.cat([valid, valid], dim=1), output, 0.0), None
        true_mean, _, true_log_var = self.q_posterior_mean_variance(x0, x_t, t)
        p = self.p_mean_variance(output, x_t, t, detach_mean=True)
        kl = normal_kl(true_mean, true_log_var, p['mean'], p['log_variance']) / NATS_PER_BIT
        nll = -discretized_gaussian_log_likelihood(
            x0, p['mean'], 0.5 * p['log_variance'], self.vb_bin_width) / NATS_PER_BIT
        is_first = (t == 0).reshape((-1, ) + (1, ) * (x0.ndim - 1))  # (B, 1, ..., 1)
        return masked_mean(torch.where(is_first, nll, kl), mask)

    # ------------------------------------------------------------ sampling
    def sample(self,
               model: Callable,
               shape: Sequence[int],
               cond: Optional[dict] = None,
               sampler: str = 'ddpm',
               num_steps: ChainSpec = None,
               eta: float = 0.0,
               guidance_scale: float = 1.0,
               guidance_keys: Optional[Sequence[str]] = None,
               known: Optional[torch.Tensor] = None,
               known_mask: Optional[torch.Tensor] = None,
               resample_jumps: int = 1,
               valid_mask: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None,
               progress: bool = False,
               clip_x0: Optional[float] = None,
               resample_steps: int = 1,
               x_T: Optional[torch.Tensor] = None,
               device=None,
               dtype: torch.dtype = torch.float32,
               start_at_zero_snr: Optional[bool] = None,
               solver_order: Optional[int] = None,
               sampler_options: Optional[dict] = None) -> torch.Tensor:
        """Draw samples x0 of ``shape`` = (B, C, ...): the keyword form of
        :meth:`sample_request` (it builds the :class:`SampleRequest`).

        Args:
            model: the denoiser, ``model(x_t, t, **cond)``.
            shape: (B, C, ...) of the samples.
            cond: condition tensors (B, ...), passed through (may hold ``drop``).
            sampler: a name in ``SAMPLERS``: ``'ddpm'`` (ancestral), ``'ddim'`` (first
                order), ``'dpmpp_2m'`` / ``'dpmpp_3m'`` (DPM-Solver++, second / third
                order), ``'unipc'`` (order ``solver_order``, default 3) or a registered one.
            num_steps: chain for sampling, see :meth:`timesteps_for`; None = the engine's
                ``timestep_respacing`` or all N steps. A bare int K (here or as
                ``timestep_respacing``) is spread by the engine's ``timestep_spacing`` of
                this sampler (see :meth:`steps_for`); pass a string (``'20'`` = linspace,
                ``'trailing20'``, ``'logsnr20'``) to choose.
            eta, clip_x0, valid_mask, x_T, start_at_zero_snr, generator, device, dtype,
                progress: the fields of :class:`SampleRequest` of those names.
            guidance_scale, guidance_keys: :class:`Guidance` (``scale``, ``keys``).
            known, known_mask, resample_jumps, resample_steps: :class:`Inpainting` (``known``,
                ``mask``, RePaint jumps and jump length); inpainting when ``known`` is given.
            solver_order: highest order of ``'unipc'`` (1, 2 or 3; default 3); the
                request's ``options=dict(order=solver_order)``.
            sampler_options: keyword arguments of the sampler's step class (the request's
                ``options``), for samplers registered with options of their own.

        Returns:
            (B, C, ...) samples.
        """
        self._check_sampler(sampler)
        options = dict(sampler_options or {})
        if solver_order is not None:
            if sampler != 'unipc':
                raise ValueError(f'GaussianDiffusion.sample: solver_order is an option of the '
                                 f'unipc sampler, not of {sampler!r}')
            if options.get('order', solver_order) != solver_order:
                raise ValueError(f'GaussianDiffusion.sample: solver_order={solver_order} and '
                                 f'sampler_options order={options["order"]} disagree')
            options['order'] = solver_order
        if (known is None) != (known_mask is None):
            raise ValueError('GaussianDiffusion.sample: known and known_mask go together; '
                             f'found known={"set" if known is not None else None}, known_mask='
                             f'{"set" if known_mask is not None else None}')
        repaint_moves(1, resample_steps, resample_jumps)  # both must be >= 1
        inpainting = None
        if known is not None:
            inpainting = Inpainting(known, known_mask, resample_jumps, resample_steps)
        elif resample_jumps != 1:
            raise ValueError('GaussianDiffusion.sample: resample_jumps > 1 (RePaint) needs '
                             'known and known_mask')
        return self.sample_request(model, SampleRequest(
            shape=shape, sampler=sampler, num_steps=num_steps, cond=cond, eta=eta,
            options=options, guidance=Guidance(guidance_scale, guidance_keys),
            inpainting=inpainting, valid_mask=valid_mask, x_T=x_T, clip_x0=clip_x0,
            start_at_zero_snr=start_at_zero_snr, generator=generator, device=device,
            dtype=dtype, progress=progress))

    def sample_request(self, model: Callable, request: SampleRequest) -> torch.Tensor:
        """Draw the samples a :class:`~occworld4d.diffusion.request.SampleRequest` describes.

        The chain is ``schedule_for(steps_for(request.sampler, request.num_steps))``; the
        loop is :func:`~occworld4d.diffusion.samplers.sample_loop`.

        Args:
            model: the denoiser, ``model(x_t, t, **cond)`` (t: original timesteps).
            request: what to sample.

        Returns:
            (B, C, ...) samples of ``request.shape``.
        """
        if not isinstance(request, SampleRequest):
            raise ValueError(f'GaussianDiffusion.sample_request: expected a SampleRequest, '
                             f'found {type(request).__name__}')
        self._check_sampler(request.sampler)
        chain = self.schedule_for(self.steps_for(request.sampler, request.num_steps))
        zero_snr = request.start_at_zero_snr
        if zero_snr is None:
            zero_snr = self.start_at_zero_snr
        return sample_loop(self, model, request, chain, start_at_zero_snr=zero_snr)

    @staticmethod
    def _check_sampler(sampler: str) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f'GaussianDiffusion.sample: unknown sampler {sampler!r}; '
                             f'expected one of {tuple(SAMPLERS)}')

    def steps_for(self, sampler: str, num_steps=None):
        """The chain spec ``sample(sampler=sampler, num_steps=num_steps)`` uses.

        None becomes ``timestep_respacing``; a bare int K < N becomes
        ``'<timestep_spacing[sampler]>K'`` (for a sampler registered after this engine was
        built: a str ``timestep_spacing`` given to the engine, else its registered
        spacing); anything else is returned unchanged.
        """
        if num_steps is None:
            num_steps = self.timestep_respacing
        if isinstance(num_steps, (int, np.integer)) and not isinstance(num_steps, bool) and \
                0 < num_steps < self.num_timesteps:
            kind = self.timestep_spacing.get(sampler) or self._spacing_for_all
            if kind is None:
                kind = spacing_of(sampler, self.beta_schedule) if sampler in SAMPLERS else \
                    'linspace'
            if kind != 'linspace':
                return f'{kind}{int(num_steps)}'
        return num_steps

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_timesteps={self.num_timesteps}, '
                f'beta_schedule={self.beta_schedule!r}, prediction_type='
                f'{self.prediction_type!r}, learn_sigma={self.learn_sigma}, loss_type='
                f'{self.loss_type!r}, timestep_respacing={self.timestep_respacing!r}, '
                f'timestep_spacing={self.timestep_spacing!r}, '
                f'start_at_zero_snr={self.start_at_zero_snr})')


def large_log_variance(chain: NoiseSchedule, index: torch.Tensor, like: torch.Tensor):
    """log of the 'large' reverse variance beta_i (beta~_1 at i = 0, as in improved DDPM)."""
    values = chain.betas.clone()
    if chain.num_steps > 1:
        values[0] = chain.posterior_variance[1]
    return values.log()[index.detach().cpu().long()].to(like.device, like.dtype).reshape(
        (-1, ) + (1, ) * (like.ndim - 1))  # (B, 1, ..., 1)


__all__ = ['GaussianDiffusion', 'large_log_variance']
