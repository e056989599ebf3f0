"""Class colours for rendered camera maps.

Uses the project palette of :mod:`occworld4d.visualization.palettes` when it is available
and falls back to a small built-in table (same colours for the Occ3D-nuScenes classes)
otherwise, so the renderer never depends on the visualization package being complete.
"""
import hashlib

import numpy as np

from occworld4d.structures.vocabularies import get_vocabulary

_FALLBACK = {
    'others': (0, 0, 0), 'barrier': (255, 120, 50), 'bicycle': (255, 192, 203),
    'bus': (255, 255, 0), 'car': (0, 150, 245), 'construction_vehicle': (0, 255, 255),
    'motorcycle': (200, 180, 0), 'pedestrian': (255, 0, 0), 'traffic_cone': (255, 240, 150),
    'trailer': (135, 60, 0), 'truck': (160, 32, 240), 'driveable_surface': (255, 0, 255),
    'other_flat': (139, 137, 137), 'sidewalk': (75, 0, 75), 'terrain': (150, 240, 80),
    'manmade': (230, 230, 250), 'vegetation': (0, 175, 0), 'road': (255, 0, 255),
    'vehicle': (0, 150, 245), 'building': (230, 230, 250), 'ground': (150, 240, 80),
    'walkable': (75, 0, 75), 'other': (0, 0, 0), 'pole': (255, 240, 150)}


def get_palette(vocabulary: str) -> np.ndarray:
    """(K, 3) uint8 colours of a vocabulary's labels; the free label is black here.

    Black (no return) is the natural background of a rendered camera map.
    """
    voc = get_vocabulary(vocabulary)
    try:
        from occworld4d.visualization.palettes import get_palette as project_palette
        pal = np.array(project_palette(vocabulary), dtype=np.uint8)
    except ImportError:
        rows = []
        for name in voc.classes:
            key = name.lower()
            digest = hashlib.md5(key.encode()).digest()
            rows.append(_FALLBACK.get(key, (digest[0], digest[1], digest[2])))
        pal = np.array(rows, dtype=np.uint8)
    pal[voc.free_label] = (0, 0, 0)
    return pal


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) image of an integer label map (H, W); labels beyond the palette are grey."""
    labels = np.asarray(labels).astype(np.int64)
    pal = np.concatenate([palette, np.full((1, 3), 128, np.uint8)])  # last row: unknown
    return pal[np.where((labels >= 0) & (labels < len(palette)), labels, len(palette))]
