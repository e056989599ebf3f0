"""Autoregressive world models (OccWorld): the U-Net transformer over token maps, the ego
branch, and the top-level :class:`OccWorld` model."""
from .occworld import OccWorld, command_modes, step_displacements
from .transformer import KVCache, OccWorldTransformer, PoseDecoder, PoseEncoder

__all__ = ['OccWorld', 'OccWorldTransformer', 'PoseEncoder', 'PoseDecoder', 'KVCache',
           'step_displacements', 'command_modes']
