from .dit import DIT_PRESETS, DiTBlock, FinalLayer, TimestepEmbedder
from .rollout_dit import RolloutDiT

__all__ = ['DIT_PRESETS', 'DiTBlock', 'FinalLayer', 'TimestepEmbedder', 'RolloutDiT']
