"""Runner hooks (registered in HOOKS)."""
from .data_skip_hook import DataSkipReportHook
from .save_samples_hook import SaveOccSamplesHook
from .visualization_hook import OccVisualizationHook

__all__ = ['DataSkipReportHook', 'OccVisualizationHook', 'SaveOccSamplesHook']
