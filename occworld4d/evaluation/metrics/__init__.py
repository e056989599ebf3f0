"""mmengine metrics (registered in METRICS)."""
from .generation_metric import (GenerationMetric, load_reference_features,
                                save_reference_features)
from .occupancy_metric import OccupancyMetric
from .planning_metric import PlanningMetric

__all__ = ['OccupancyMetric', 'GenerationMetric', 'save_reference_features',
           'load_reference_features']
__all__ += ['PlanningMetric']
