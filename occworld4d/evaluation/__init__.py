"""Evaluation: pure metric functions, mmengine metrics, the occupancy feature extractor."""
from . import functional, metrics  # noqa: F401
