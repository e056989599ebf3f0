"""Runner hooks (registered in HOOKS)."""
from .save_samples_hook import SaveOccSamplesHook
from .visualization_hook import OccVisualizationHook

__all__ = ['OccVisualizationHook', 'SaveOccSamplesHook']
