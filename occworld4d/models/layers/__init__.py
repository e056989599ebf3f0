from .attention import Attention, flash_available, scaled_dot_product

__all__ = ['Attention', 'scaled_dot_product', 'flash_available']
