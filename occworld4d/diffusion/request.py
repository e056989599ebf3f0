"""The typed sampling request of the diffusion engine: what to sample, and how.

:meth:`GaussianDiffusion.sample_request` takes one :class:`SampleRequest`;
:meth:`GaussianDiffusion.sample` is the keyword form that builds it. Timesteps are never part
of a request: ``num_steps`` names a chain of ORIGINAL timestep indices (see
:meth:`GaussianDiffusion.timesteps_for`), the one index space of the engine.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

# what names a sampling chain: a step count, '<kind>K', '10,15,20' sections, explicit
# original timestep indices, or None (the engine's timestep_respacing, else all N steps)
ChainSpec = Union[None, int, str, Sequence[int]]


@dataclass
class Guidance:
    """Classifier-free guidance: ONE batched forward on [cond; uncond] per step.

    Attributes:
        scale: s; the output is pred_u + s (pred_c - pred_u) (1 = the plain conditional call;
            the learned-variance channels come from the conditional half).
        keys: the conditions dropped in the unconditional half; None = every condition key.
    """

    scale: float = 1.0
    keys: Optional[Sequence[str]] = None


@dataclass
class Inpainting:
    """Keep a known region of the sample (inpainting / outpainting), optionally with RePaint.

    Attributes:
        known: (B, C, ...) the latent whose masked region is kept: at every step that region
            is replaced by ``q_sample(known)`` at the current noise level, and by ``known``
            exactly at the end.
        mask: bool broadcastable to the sample shape; True = keep ``known``.
        resample_jumps: RePaint: how many times each block of ``resample_steps`` steps is
            denoised (1 = no resampling); between passes the chain is re-noised back up.
        resample_steps: RePaint jump length, in steps of the sampling chain.
    """

    known: Tensor
    mask: Tensor
    resample_jumps: int = 1
    resample_steps: int = 1


@dataclass
class SampleRequest:
    """One call of the sampling loop.

    Attributes:
        shape: (B, C, ...) of the samples.
        sampler: a name registered in :data:`~occworld4d.diffusion.samplers.SAMPLERS`.
        num_steps: the chain (:data:`ChainSpec`); a bare int K is spread by the engine's
            ``timestep_spacing`` of this sampler (:meth:`GaussianDiffusion.steps_for`).
        cond: condition tensors (B, ...) passed to the model untouched (may hold ``drop``).
        eta: stochasticity of the samplers that have one (DDIM: 0 deterministic, 1 DDPM
            variance); the others ignore it.
        options: further keyword arguments of the sampler's step class, e.g.
            ``dict(order=2)`` for ``'unipc'``.
        guidance: classifier-free guidance (:class:`Guidance`).
        inpainting: a known region to keep (:class:`Inpainting`) or None.
        valid_mask: bool broadcastable to ``shape``; invalid cells are 0 throughout.
        x_T: (B, C, ...) starting noise; drawn when None.
        clip_x0: clamp the predicted x0 to [-clip_x0, clip_x0] when set.
        start_at_zero_snr: override the engine's ``start_at_zero_snr`` (None = keep it).
        generator: torch.Generator for every random draw (reproducible samples).
        device: device of the samples (default: the known latent's, a condition's, the
            generator's, else CPU).
        dtype: floating dtype of the samples.
        progress: show a tqdm progress bar.
    """

    shape: Tuple[int, ...]
    sampler: str = 'ddpm'
    num_steps: ChainSpec = None
    cond: Dict[str, Any] = field(default_factory=dict)
    eta: float = 0.0
    options: Dict[str, Any] = field(default_factory=dict)
    guidance: Guidance = field(default_factory=Guidance)
    inpainting: Optional[Inpainting] = None
    valid_mask: Optional[Tensor] = None
    x_T: Optional[Tensor] = None
    clip_x0: Optional[float] = None
    start_at_zero_snr: Optional[bool] = None
    generator: Optional[torch.Generator] = None
    device: Union[None, str, torch.device] = None
    dtype: torch.dtype = torch.float32
    progress: bool = False

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        self.cond = dict(self.cond or {})
        self.options = dict(self.options or {})


__all__ = ['ChainSpec', 'Guidance', 'Inpainting', 'SampleRequest']
