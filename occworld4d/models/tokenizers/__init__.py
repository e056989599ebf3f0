from .base import BaseTokenizer, attach_predictions

__all__ = ['BaseTokenizer', 'attach_predictions']
