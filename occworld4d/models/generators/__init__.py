from .latent_diffusion import LatentDiffusion
from .uniscene import UniSceneLatentDiffusion, occupancy_meta

__all__ = ['LatentDiffusion', 'UniSceneLatentDiffusion', 'occupancy_meta']
