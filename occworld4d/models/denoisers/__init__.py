from .dit import DIT_PRESETS, DiTBlock, FinalLayer, TimestepEmbedder
from .occsora_dit import OccSoraDiT
from .rollout_dit import RolloutDiT
from .uniscene_dit import UniSceneOccDiT

__all__ = ['DIT_PRESETS', 'DiTBlock', 'FinalLayer', 'TimestepEmbedder', 'RolloutDiT', 'OccSoraDiT',
           'UniSceneOccDiT']
