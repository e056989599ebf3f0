from .base import BaseOccSequenceDataset, DataFormatError, pack_window_cache
from .carlasc import CarlaSCDataset
from .occ3d_nuscenes import Occ3DNuScenesDataset
from .occ3d_waymo import Occ3DWaymoDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['BaseOccSequenceDataset', 'DataFormatError', 'pack_window_cache', 'CarlaSCDataset',
           'Occ3DNuScenesDataset', 'Occ3DWaymoDataset']
from .synthetic_city import SyntheticCityDataset  # noqa: F401,E402
from .latent_cache import LatentCacheDataset  # noqa: F401,E402
