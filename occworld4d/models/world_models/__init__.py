"""Autoregressive world models (OccWorld): the U-Net transformer over token maps, the ego
branch, the top-level :class:`OccWorld` model, and the parameter-free forecasting baselines
(copy the last frame, warp it by the known ego poses) with the same ``predict`` contract."""
from .baselines import (CopyLastForecaster, EgoWarpForecaster, ForecastBaseline,
                        constant_velocity_plan, warp_frame)
from .occworld import OccWorld, command_modes, step_displacements
from .transformer import KVCache, OccWorldTransformer, PoseDecoder, PoseEncoder

__all__ = ['OccWorld', 'OccWorldTransformer', 'PoseEncoder', 'PoseDecoder', 'KVCache',
           'step_displacements', 'command_modes', 'ForecastBaseline', 'CopyLastForecaster',
           'EgoWarpForecaster', 'constant_velocity_plan', 'warp_frame']
