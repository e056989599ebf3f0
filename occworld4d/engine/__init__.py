"""Engine extensions for mmengine's Runner: hooks and optim wrappers (imported here so the
registries find them)."""
from . import hooks, optim_wrappers  # noqa: F401
from .hooks import OccVisualizationHook, SaveOccSamplesHook  # noqa: F401
from .optim_wrappers import CPUAutocastOptimWrapper  # noqa: F401
