"""Runner hooks (registered in HOOKS)."""
from .checkpoint_hook import (LoadFromMismatchError, NonFiniteCheckpointError,
                              SafeCheckpointHook)
from .data_skip_hook import DataSkipReportHook
from .nan_guard_hook import NonFiniteGuardHook, NonFiniteLossError
from .save_samples_hook import SaveOccSamplesHook
from .visualization_hook import OccVisualizationHook

__all__ = ['DataSkipReportHook', 'LoadFromMismatchError', 'NonFiniteCheckpointError',
           'NonFiniteGuardHook', 'NonFiniteLossError', 'OccVisualizationHook',
           'SafeCheckpointHook', 'SaveOccSamplesHook']
