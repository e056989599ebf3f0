"""Building blocks of DynamicCity's HexPlane VAE (see ``hexplane_vae.py``)."""
from .decoder import (ExpansionSqueezeDecoder, PlaneConvBlock, PlaneUpsampler, QueryDecoder,
                      expand_planes, sinusoidal_coords)
from .encoder import (PLANES, REDUCTIONS, HexPlaneEncoder, ProjectionTransformer,
                      VoxelConvEncoder)

__all__ = ['PLANES', 'REDUCTIONS', 'HexPlaneEncoder', 'ProjectionTransformer',
           'VoxelConvEncoder', 'ExpansionSqueezeDecoder', 'PlaneConvBlock', 'PlaneUpsampler',
           'QueryDecoder', 'expand_planes', 'sinusoidal_coords']
