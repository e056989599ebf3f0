"""Small rigid-transform helpers shared by the sensors and the layout rasterizer."""
from typing import Sequence

import numpy as np


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion given as (w, x, y, z) (nuScenes order)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def pose_matrix(rotation: Sequence[float], translation: Sequence[float]) -> np.ndarray:
    """4 x 4 pose from a (w, x, y, z) quaternion or a 3 x 3 matrix and a translation (3,)."""
    rot = np.asarray(rotation, dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = rot if rot.shape == (3, 3) else quaternion_to_matrix(rot)
    m[:3, 3] = np.asarray(translation, dtype=np.float64)
    return m


def yaw_of(rotation: np.ndarray) -> float:
    """Heading (radians, about +z) of a 3 x 3 (or 4 x 4) rotation."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))
