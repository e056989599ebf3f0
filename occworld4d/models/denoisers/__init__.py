from .dit import DIT_PRESETS, DiTBlock, DiTSize, FinalLayer, TimestepEmbedder, dit_size
from .occsora_dit import OccSoraDiT
from .rollout_dit import RolloutDiT
from .uniscene_dit import UniSceneOccDiT

__all__ = ['DIT_PRESETS', 'DiTSize', 'dit_size', 'DiTBlock', 'FinalLayer', 'TimestepEmbedder',
           'RolloutDiT', 'OccSoraDiT', 'UniSceneOccDiT']
