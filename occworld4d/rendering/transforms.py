"""Small rigid-transform helpers shared by the sensors and the layout rasterizer."""
from typing import Sequence

import numpy as np

from occworld4d.datasets.geometry import pose_matrix, quaternion_to_matrix  # noqa: F401


def yaw_of(rotation: np.ndarray) -> float:
    """Heading (radians, about +z) of a 3 x 3 (or 4 x 4) rotation."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))
