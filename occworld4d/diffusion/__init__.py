"""The one Gaussian-diffusion engine: schedules, losses, samplers, guidance, inpainting.

Timesteps are original indices in [0, N) everywhere (see docs/diffusion.md).
"""
from .analytic import GaussianDataDenoiser, gaussian_distances
from .gaussian_diffusion import GaussianDiffusion
from .guidance import ClassifierFreeGuidance, repaint_moves
from .losses import discretized_gaussian_log_likelihood, masked_mean, normal_kl
from .request import ChainSpec, Guidance, Inpainting, SampleRequest
from .samplers import (SAMPLERS, DDIMStep, DDPMStep, DPMSolverPP2MStep, DPMSolverPP3MStep,
                       Level, SamplerStep, UniPCStep, build_step, register_sampler,
                       sample_loop, spacing_of)
from .schedules import NoiseSchedule, make_betas, space_timesteps

__all__ = ['GaussianDiffusion', 'ClassifierFreeGuidance', 'repaint_moves',
           'discretized_gaussian_log_likelihood', 'masked_mean', 'normal_kl', 'SAMPLERS',
           'SamplerStep', 'DDPMStep', 'DDIMStep', 'DPMSolverPP2MStep', 'DPMSolverPP3MStep',
           'UniPCStep', 'Level', 'register_sampler', 'build_step', 'spacing_of', 'sample_loop',
           'ChainSpec', 'Guidance', 'Inpainting', 'SampleRequest', 'NoiseSchedule',
           'make_betas', 'space_timesteps', 'GaussianDataDenoiser', 'gaussian_distances']
