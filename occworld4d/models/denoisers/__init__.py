from .dit import DIT_PRESETS, DiTBlock, FinalLayer, TimestepEmbedder
from .occsora_dit import OccSoraDiT
from .rollout_dit import RolloutDiT

__all__ = ['DIT_PRESETS', 'DiTBlock', 'FinalLayer', 'TimestepEmbedder', 'RolloutDiT', 'OccSoraDiT']
