from .attention import Attention, flash_available, scaled_dot_product

__all__ = ['Attention', 'scaled_dot_product', 'flash_available']
from .embeddings import PatchEmbed2d, sincos_1d, sincos_2d, timestep_embedding  # noqa: E402

__all__ += ['PatchEmbed2d', 'sincos_1d', 'sincos_2d', 'timestep_embedding']
