"""mmengine metrics (registered in METRICS)."""
from .generation_metric import (GenerationMetric, load_reference_features,
                                save_reference_features)
from .occupancy_metric import OccupancyMetric

__all__ = ['OccupancyMetric', 'GenerationMetric', 'save_reference_features',
           'load_reference_features']
