"""The synthetic city's canonical vocabulary and its label tables to every dataset format.

Everything is generated in :data:`CITY_CLASSES` and mapped to a vocabulary of
:mod:`occworld4d.structures.vocabularies` through :data:`CITY_TO_RAW` (CarlaSC raw 23
classes, Occ3D-nuScenes 18, Occ3D-Waymo 16) and the named merges of DynamicCity.
"""
from typing import Dict

import numpy as np

from occworld4d.structures.vocabularies import (MERGES, VOCABULARIES, Vocabulary,
                                                get_vocabulary)

CITY_CLASSES = ('free', 'road', 'roadline', 'sidewalk', 'terrain', 'building', 'fence',
                'vegetation', 'trunk', 'pole', 'traffic_sign', 'vehicle', 'pedestrian')
(FREE, ROAD, ROADLINE, SIDEWALK, TERRAIN, BUILDING, FENCE, VEGETATION, TRUNK, POLE, SIGN,
 VEHICLE, PEDESTRIAN) = range(len(CITY_CLASSES))
if 'synthetic_city' not in VOCABULARIES:  # make the canonical vocabulary selectable by name
    VOCABULARIES['synthetic_city'] = Vocabulary('synthetic_city', CITY_CLASSES, FREE)

# Canonical class -> raw class name of each format (documented tables, one line per class).
CITY_TO_RAW: Dict[str, Dict[str, str]] = {
    'carlasc_raw': dict(
        free='free', road='road', roadline='roadlines', sidewalk='sidewalk', terrain='terrain',
        building='building', fence='fences', vegetation='vegetation', trunk='vegetation',
        pole='pole', traffic_sign='trafficsign', vehicle='vehicles', pedestrian='pedestrian'),
    'occ3d_nuscenes': dict(
        free='free', road='driveable_surface', roadline='driveable_surface',
        sidewalk='sidewalk', terrain='terrain', building='manmade', fence='barrier',
        vegetation='vegetation', trunk='vegetation', pole='manmade', traffic_sign='manmade',
        vehicle='car', pedestrian='pedestrian'),
    'occ3d_waymo': dict(
        free='FREE', road='ROAD', roadline='ROAD', sidewalk='WALKABLE', terrain='WALKABLE',
        building='BUILDING', fence='GENERALOBJECT', vegetation='VEGETATION',
        trunk='TREE_TRUNK', pole='POLE', traffic_sign='SIGN', vehicle='VEHICLE',
        pedestrian='PEDESTRIAN'),
}
# Vocabularies reached through a raw table and a named merge.
_VIA_MERGE = {'dynamiccity_carlasc': ('carlasc_raw', 'carlasc_to_dynamiccity'),
              'dynamiccity_nuscenes': ('occ3d_nuscenes', 'occ3d_nuscenes_to_dynamiccity'),
              'dynamiccity_waymo': ('occ3d_waymo', 'occ3d_waymo_to_dynamiccity')}


def city_label_lut(vocabulary: str) -> np.ndarray:
    """Lookup table canonical id -> id in ``vocabulary`` (uint8, (len(CITY_CLASSES),)).

    ``vocabulary`` is ``'synthetic_city'``, a raw format (``carlasc_raw``,
    ``occ3d_nuscenes``, ``occ3d_waymo``) or a DynamicCity merge of one of them.
    """
    if vocabulary == 'synthetic_city':
        return np.arange(len(CITY_CLASSES), dtype=np.uint8)
    if vocabulary in CITY_TO_RAW:
        classes = get_vocabulary(vocabulary).classes
        return np.array([classes.index(CITY_TO_RAW[vocabulary][c]) for c in CITY_CLASSES],
                        np.uint8)
    if vocabulary in _VIA_MERGE:
        raw, merge = _VIA_MERGE[vocabulary]
        return MERGES[merge][2][city_label_lut(raw)]
    raise KeyError(f'synthetic city: no label table for vocabulary {vocabulary!r}; expected '
                   f"one of {['synthetic_city', *CITY_TO_RAW, *_VIA_MERGE]}")
