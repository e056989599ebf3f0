"""The one Gaussian-diffusion engine: schedules, losses, samplers, guidance, inpainting."""
from .analytic import GaussianDataDenoiser, gaussian_distances
from .gaussian_diffusion import GaussianDiffusion
from .guidance import ClassifierFreeGuidance, repaint_moves
from .losses import discretized_gaussian_log_likelihood, masked_mean, normal_kl
from .samplers import (SAMPLERS, DDIMStep, DDPMStep, DPMSolverPP2MStep, DPMSolverPP3MStep,
                       Level, SamplerStep, UniPCStep, run_sampler)
from .schedules import NoiseSchedule, make_betas, space_timesteps

__all__ = ['GaussianDiffusion', 'ClassifierFreeGuidance', 'repaint_moves',
           'discretized_gaussian_log_likelihood', 'masked_mean', 'normal_kl', 'SAMPLERS',
           'SamplerStep', 'DDPMStep', 'DDIMStep', 'DPMSolverPP2MStep', 'DPMSolverPP3MStep',
           'UniPCStep', 'Level', 'run_sampler', 'NoiseSchedule', 'make_betas',
           'space_timesteps', 'GaussianDataDenoiser', 'gaussian_distances']
