"""Runner hooks (registered in HOOKS)."""
from .visualization_hook import OccVisualizationHook

__all__ = ['OccVisualizationHook']
