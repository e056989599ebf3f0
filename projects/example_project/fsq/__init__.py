from .fsq_quantizer import FSQuantizer

__all__ = ['FSQuantizer']
