"""mmengine metrics (registered in METRICS)."""
from .occupancy_metric import OccupancyMetric

__all__ = ['OccupancyMetric']
