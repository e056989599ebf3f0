"""Evaluation: pure metric functions, mmengine metrics, the occupancy feature extractor."""
from . import functional  # noqa: F401
from .feature_extractor import (OccFeatureExtractor2D, OccFeatureExtractor3D,
                                VersionMismatchError)
from .metrics import GenerationMetric, OccupancyMetric
from .metrics import PlanningMetric  # noqa: F401

__all__ = ['OccupancyMetric', 'GenerationMetric', 'OccFeatureExtractor2D',
           'OccFeatureExtractor3D', 'VersionMismatchError']
