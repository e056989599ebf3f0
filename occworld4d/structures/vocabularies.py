"""Class vocabularies of every dataset and the merges between them, as data.

A vocabulary is a tuple of class names indexed by label id plus the id of ``free``.
A merge maps every raw id of one vocabulary to an id of another (a numpy lookup table),
so a remap of a whole grid is ``lut[grid]``. Configs select merges by name, e.g.
``dict(type='RemapClasses', merge='occ3d_nuscenes_to_dynamiccity11')``.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

COMMANDS = ('STATIC', 'FORWARD', 'LEFT', 'RIGHT')


@dataclass(frozen=True)
class Vocabulary:
    name: str
    classes: Tuple[str, ...]
    free_label: int

    @property
    def num_classes(self) -> int:
        return len(self.classes)


VOCABULARIES: Dict[str, Vocabulary] = {}


def _register(name, classes, free_label):
    VOCABULARIES[name] = Vocabulary(name, tuple(classes), free_label)


# Occ3D-nuScenes: nuScenes-lidarseg-16 classes 0..16, 17 = free.
_register('occ3d_nuscenes', (
    'others', 'barrier', 'bicycle', 'bus', 'car', 'construction_vehicle', 'motorcycle',
    'pedestrian', 'traffic_cone', 'trailer', 'truck', 'driveable_surface', 'other_flat',
    'sidewalk', 'terrain', 'manmade', 'vegetation', 'free'), free_label=17)
# Occ3D-Waymo: 0..14 semantic, 15 (README) or 23 (visualizer) free; the reader maps 23 -> 15.
_register('occ3d_waymo', (
    'GENERALOBJECT', 'VEHICLE', 'PEDESTRIAN', 'SIGN', 'CYCLIST', 'TRAFFIC_LIGHT', 'POLE',
    'CONSTRUCTION_CONE', 'BICYCLE', 'MOTORCYCLE', 'BUILDING', 'VEGETATION', 'TREE_TRUNK',
    'ROAD', 'WALKABLE', 'FREE'), free_label=15)
# CarlaSC raw: 23 classes, 0 = free.
_register('carlasc_raw', (
    'free', 'building', 'fences', 'other', 'pedestrian', 'pole', 'roadlines', 'road',
    'sidewalk', 'vegetation', 'vehicles', 'wall', 'trafficsign', 'sky', 'ground', 'bridge',
    'railtrack', 'guardrail', 'trafficlight', 'static', 'dynamic', 'water', 'terrain'),
    free_label=0)
# DynamicCity's CarlaSC remap: 12 slots, 0 = free, slot 11 (bicycle) unused on CarlaSC.
_register('dynamiccity_carlasc', (
    'free', 'building', 'barrier', 'other', 'pedestrian', 'pole', 'road', 'ground',
    'sidewalk', 'vegetation', 'vehicle', 'bicycle'), free_label=0)
# DynamicCity's 11-class merge of Occ3D-nuScenes (free first, as in its CarlaSC layout).
_register('dynamiccity_nuscenes', (
    'free', 'building', 'barrier', 'other', 'pedestrian', 'pole', 'road', 'ground',
    'sidewalk', 'vegetation', 'vehicle', 'bicycle'), free_label=0)
# DynamicCity's 9-class merge of Occ3D-Waymo, plus free at 0.
_register('dynamiccity_waymo', (
    'free', 'building', 'other', 'pedestrian', 'pole', 'road', 'sidewalk', 'vegetation',
    'vehicle', 'bicycle'), free_label=0)


def _lut(src: str, dst: str, groups: Dict[str, Tuple[str, ...]], size: int = 256) -> np.ndarray:
    """Build a lookup table src id -> dst id from ``{dst class: (src classes, ...)}``.

    Ids of ``src`` not named in ``groups`` map to ``dst``'s free label; ids beyond the
    vocabulary (up to ``size``) map to 255 so that an unknown raw label is detectable.
    """
    s, d = VOCABULARIES[src], VOCABULARIES[dst]
    lut = np.full(size, 255, dtype=np.uint8)
    lut[:s.num_classes] = d.free_label
    for dst_name, src_names in groups.items():
        for src_name in src_names:
            lut[s.classes.index(src_name)] = d.classes.index(dst_name)
    return lut


MERGES: Dict[str, Tuple[str, str, np.ndarray]] = {}


def _merge(name, src, dst, groups):
    MERGES[name] = (src, dst, _lut(src, dst, groups))


_merge('carlasc_to_dynamiccity', 'carlasc_raw', 'dynamiccity_carlasc', {
    'free': ('free',), 'building': ('building',),
    'barrier': ('fences', 'wall', 'guardrail'),
    'other': ('other', 'sky', 'bridge', 'railtrack', 'static', 'dynamic', 'water'),
    'pedestrian': ('pedestrian',), 'pole': ('pole', 'trafficsign', 'trafficlight'),
    'road': ('roadlines', 'road'), 'ground': ('ground', 'terrain'),
    'sidewalk': ('sidewalk',), 'vegetation': ('vegetation',), 'vehicle': ('vehicles',)})
_merge('occ3d_nuscenes_to_dynamiccity', 'occ3d_nuscenes', 'dynamiccity_nuscenes', {
    'free': ('free',), 'building': ('manmade',), 'barrier': ('barrier',),
    'other': ('others',), 'pedestrian': ('pedestrian',), 'pole': ('traffic_cone',),
    'road': ('driveable_surface',), 'ground': ('other_flat', 'terrain'),
    'sidewalk': ('sidewalk',), 'vegetation': ('vegetation',),
    'vehicle': ('bus', 'car', 'construction_vehicle', 'trailer', 'truck'),
    'bicycle': ('bicycle', 'motorcycle')})
_merge('occ3d_waymo_to_dynamiccity', 'occ3d_waymo', 'dynamiccity_waymo', {
    'free': ('FREE',), 'building': ('BUILDING',), 'other': ('GENERALOBJECT',),
    'pedestrian': ('PEDESTRIAN',),
    'pole': ('SIGN', 'TRAFFIC_LIGHT', 'POLE', 'CONSTRUCTION_CONE'), 'road': ('ROAD',),
    'sidewalk': ('WALKABLE',), 'vegetation': ('VEGETATION', 'TREE_TRUNK'),
    'vehicle': ('VEHICLE',), 'bicycle': ('CYCLIST', 'BICYCLE', 'MOTORCYCLE')})


def get_vocabulary(name: str) -> Vocabulary:
    if name not in VOCABULARIES:
        raise KeyError(f'unknown vocabulary {name!r}; expected one of {sorted(VOCABULARIES)}')
    return VOCABULARIES[name]


def get_merge(name: str) -> Tuple[Vocabulary, Vocabulary, np.ndarray]:
    """Return (source vocabulary, target vocabulary, lookup table) of a named merge."""
    if name not in MERGES:
        raise KeyError(f'unknown class merge {name!r}; expected one of {sorted(MERGES)}')
    src, dst, lut = MERGES[name]
    return VOCABULARIES[src], VOCABULARIES[dst], lut
