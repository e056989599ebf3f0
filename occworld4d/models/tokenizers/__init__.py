from .base import BaseTokenizer, attach_predictions

__all__ = ['BaseTokenizer', 'attach_predictions']
from .rollout import PaddedRollout  # noqa: E402,F401
