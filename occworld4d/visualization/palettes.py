"""Class colour palettes, one per vocabulary, as (K, 3) uint8 arrays indexed by label id.

The nuScenes-occupancy colours are the ones every Occ3D-nuScenes visualizer uses
(car blue, driveable surface magenta, vegetation green, ...). Other vocabularies reuse
them by class name (``vehicle`` = car, ``road`` = driveable surface, ...) so the same
thing has the same colour in every dataset; names without an entry get a fixed colour
derived from the name.
"""
import hashlib
from typing import Dict, Tuple, Union

import numpy as np

from occworld4d.structures import Vocabulary, get_vocabulary

# Occ3D-nuScenes standard occupancy colours, in vocabulary order (ids 0..16) + free.
_NUSCENES_COLOURS = (
    (0, 0, 0),          # 0 others
    (255, 120, 50),     # 1 barrier
    (255, 192, 203),    # 2 bicycle
    (255, 255, 0),      # 3 bus
    (0, 150, 245),      # 4 car
    (0, 255, 255),      # 5 construction_vehicle
    (200, 180, 0),      # 6 motorcycle
    (255, 0, 0),        # 7 pedestrian
    (255, 240, 150),    # 8 traffic_cone
    (135, 60, 0),       # 9 trailer
    (160, 32, 240),     # 10 truck
    (255, 0, 255),      # 11 driveable_surface
    (139, 137, 137),    # 12 other_flat
    (75, 0, 75),        # 13 sidewalk
    (150, 240, 80),     # 14 terrain
    (230, 230, 250),    # 15 manmade
    (0, 175, 0),        # 16 vegetation
    (255, 255, 255),    # 17 free (never drawn; background colour)
)
_NUSCENES_NAMES = get_vocabulary('occ3d_nuscenes').classes

# Colour of each class name (lower case) of every vocabulary.
NAME_COLOURS: Dict[str, Tuple[int, int, int]] = {
    name: rgb for name, rgb in zip(_NUSCENES_NAMES, _NUSCENES_COLOURS)}
NAME_COLOURS.update({
    # DynamicCity merges and CarlaSC raw classes, mapped onto the nuScenes colours.
    'building': NAME_COLOURS['manmade'], 'barrier': NAME_COLOURS['barrier'],
    'other': NAME_COLOURS['others'], 'pole': (255, 240, 150), 'road': NAME_COLOURS[
        'driveable_surface'], 'ground': NAME_COLOURS['terrain'], 'vehicle': NAME_COLOURS['car'],
    'vehicles': NAME_COLOURS['car'], 'fences': (255, 120, 50), 'wall': (190, 153, 153),
    'roadlines': (157, 234, 50), 'trafficsign': (220, 220, 0), 'sky': (70, 130, 180),
    'bridge': (150, 100, 100), 'railtrack': (230, 150, 140), 'guardrail': (180, 165, 180),
    'trafficlight': (250, 170, 30), 'static': (110, 190, 160), 'dynamic': (170, 120, 50),
    'water': (45, 60, 150),
    # Occ3D-Waymo names.
    'generalobject': NAME_COLOURS['others'], 'sign': (220, 220, 0),
    'cyclist': (255, 192, 203), 'traffic_light': (250, 170, 30),
    'construction_cone': NAME_COLOURS['traffic_cone'], 'tree_trunk': (100, 60, 20),
    'walkable': NAME_COLOURS['sidewalk'],
})

PaletteLike = Union[str, Vocabulary, np.ndarray, list, tuple]


def _name_colour(name: str) -> Tuple[int, int, int]:
    """Colour of a class name: the table above, else a fixed colour hashed from the name."""
    key = name.lower()
    if key in NAME_COLOURS:
        return NAME_COLOURS[key]
    digest = hashlib.md5(key.encode()).digest()
    return int(digest[0]), int(digest[1]), int(digest[2])


def get_palette(vocabulary: PaletteLike) -> np.ndarray:
    """Palette of a vocabulary (by name) or a palette given as a (K, 3) array / list.

    Args:
        vocabulary: a name in :mod:`occworld4d.structures.vocabularies`, a
            :class:`~occworld4d.structures.Vocabulary` (e.g. the class names an npz
            records, colours by name), or colours.

    Returns:
        uint8 array (K, 3); row k is the RGB colour of label k. The free label's row is
        white (it is only used as the background colour).
    """
    if isinstance(vocabulary, (str, Vocabulary)):
        voc = get_vocabulary(vocabulary) if isinstance(vocabulary, str) else vocabulary
        pal = np.array([_name_colour(n) for n in voc.classes], dtype=np.uint8)  # (K, 3)
        pal[voc.free_label] = (255, 255, 255)
        return pal
    pal = np.asarray(vocabulary)
    if pal.ndim != 2 or pal.shape[1] != 3:
        raise ValueError(f'a palette must be a vocabulary name or an array (K, 3); got shape '
                         f'{pal.shape}')
    return pal.astype(np.uint8)
