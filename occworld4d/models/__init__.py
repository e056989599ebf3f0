"""Models: import of this package registers every model component in MODELS."""
from . import data_preprocessors, denoisers, generators, layers, losses, tokenizers  # noqa: F401
from . import world_models  # noqa: F401
