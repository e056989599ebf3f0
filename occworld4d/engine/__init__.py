"""Engine extensions for mmengine's Runner: hooks (imported here so HOOKS finds them)."""
from . import hooks  # noqa: F401
from .hooks import OccVisualizationHook, SaveOccSamplesHook  # noqa: F401
