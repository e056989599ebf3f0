from .cross_entropy import VoxelCrossEntropyLoss, frequency_class_weights
from .kl import gaussian_kl
from .lovasz import LovaszSoftmaxLoss, lovasz_softmax, lovasz_softmax_lean

__all__ = ['VoxelCrossEntropyLoss', 'frequency_class_weights', 'gaussian_kl',
           'LovaszSoftmaxLoss', 'lovasz_softmax', 'lovasz_softmax_lean']
