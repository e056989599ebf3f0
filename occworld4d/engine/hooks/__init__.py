"""Runner hooks (registered in HOOKS)."""
from .checkpoint_hook import (LoadFromMismatchError, NonFiniteCheckpointError,
                              SafeCheckpointHook)
from .data_skip_hook import DataSkipReportHook
from .nan_guard_hook import NonFiniteGuardHook, NonFiniteLossError
from .rng_state_hook import RNGStateHook
from .save_samples_hook import SaveOccSamplesHook
from .signal_hook import SignalCheckpointHook, TrainingInterrupted
from .visualization_hook import OccVisualizationHook

__all__ = ['DataSkipReportHook', 'LoadFromMismatchError', 'NonFiniteCheckpointError',
           'NonFiniteGuardHook', 'NonFiniteLossError', 'OccVisualizationHook', 'RNGStateHook',
           'SafeCheckpointHook', 'SaveOccSamplesHook', 'SignalCheckpointHook',
           'TrainingInterrupted']
