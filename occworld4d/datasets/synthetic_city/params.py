"""Sensor presets of the real datasets, the ego scenarios and the street / traffic parameters."""
from dataclasses import dataclass
from typing import Dict, Tuple

@dataclass(frozen=True)
class CityPreset:
    """Sensor grid and timing of one real dataset."""
    pc_range: Tuple[float, ...]  # (x0, y0, z0, x1, y1, z1) metres, ego frame
    grid_size: Tuple[int, int, int]  # default (X, Y, Z)
    frame_rate: float  # Hz
    ground_z: float  # height of the road surface in the ego frame (m)
    vocabulary: str  # default vocabulary of the dataset


PRESETS: Dict[str, CityPreset] = {
    # CarlaSC: lidar frame, road in the lowest voxel layer, 10 Hz.
    'carlasc': CityPreset((-25.6, -25.6, -2.0, 25.6, 25.6, 1.0), (128, 128, 8), 10.0, -1.8,
                          'dynamiccity_carlasc'),
    # Occ3D-nuScenes: the real frame has driveable_surface only in z layer 0; keyframes 2 Hz.
    'occ3d_nuscenes': CityPreset((-40.0, -40.0, -1.0, 40.0, 40.0, 5.4), (200, 200, 16), 2.0,
                                 -0.8, 'occ3d_nuscenes'),
    # Occ3D-Waymo: vehicle frame origin on the ground (z layer 2; unverified), 10 Hz.
    'occ3d_waymo': CityPreset((-40.0, -40.0, -1.0, 40.0, 40.0, 5.4), (200, 200, 16), 10.0, 0.0,
                              'occ3d_waymo'),
}
SCENARIOS = ('straight', 'left', 'right', 'stop')


@dataclass
class CityParams:
    """Street geometry and traffic of the generator (metres, m/s)."""
    lane_width: float = 3.5  # one lane
    sidewalk_width: float = 3.0
    block_range: Tuple[float, float] = (40.0, 90.0)  # side length of a block
    building_height: Tuple[float, float] = (5.0, 30.0)
    park_probability: float = 0.3  # share of blocks that are parks instead of buildings
    ego_speed: Tuple[float, float] = (6.0, 10.0)
    vehicle_spacing: float = 28.0  # mean gap between vehicles in a lane
    vehicle_speed: Tuple[float, float] = (0.0, 11.0)
    pedestrians_per_100m: float = 3.0  # per sidewalk side
    margin: float = 12.0  # world raster beyond the farthest grid corner
