from .latent_diffusion import LatentDiffusion

__all__ = ['LatentDiffusion']
