"""occworld4d: generation and forecasting of 4D semantic occupancy."""
from .utils.compat import apply_mmengine_compat
from .version import __version__

apply_mmengine_compat()

__all__ = ['__version__']
