"""Occupancy -> LiDAR: a spinning-LiDAR simulator over a semantic voxel grid.

The sensor casts one ray per (beam, azimuth) cell of its range image through the shared DDA
core (:func:`occworld4d.rendering.raycast.cast_rays`) and returns, per ray, the first
occupied voxel's surface point, range and class. Rays that leave the grid or pass
``max_range`` without a hit are flagged ``drop`` (as are rays removed by the optional random
ray drop). Everything is tensors: CPU or CUDA, no Python loop over rays.

Example::

    sensor = LidarSensor.preset('nuscenes_lidar_top')
    scan = LidarSimulator(sensor).simulate(semantics)       # semantics (X, Y, Z)
    pts = scan.valid_points()                                # (N, 4): x, y, z, label
"""
from dataclasses import dataclass, replace
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from occworld4d.registry import TASK_UTILS
from occworld4d.structures.errors import DataFormatError
from occworld4d.structures.geometry import pose_matrix
from occworld4d.structures.nuscenes_infos import load_info_frames
from .raycast import GridGeometry, cast_rays, to_grid_tensor


def _pose(translation=(0.0, 0.0, 0.0)) -> Tuple[Tuple[float, ...], ...]:
    m = np.eye(4)
    m[:3, 3] = translation
    return tuple(tuple(float(v) for v in row) for row in m)


@dataclass(frozen=True)
class LidarSensor:
    """Beam pattern and mounting of a spinning LiDAR.

    Attributes:
        num_beams: number of lasers (rows of the range image).
        elevation_range: (lowest, highest) beam elevation in degrees, beams evenly spaced;
            ignored when ``elevations`` is given.
        num_azimuth: firings per revolution (columns); azimuth resolution = 360 / num_azimuth.
        max_range: metres; farther returns are dropped.
        sensor2ego: 4 x 4 pose of the sensor in the ego (grid) frame. Azimuth 0 is the
            sensor's +x axis, increasing counter-clockwise about its +z axis.
        elevations: optional explicit per-beam elevations (degrees), for non-uniform sensors.
        range_noise_std: std (metres) of Gaussian noise added to hit ranges (0 = exact).
        drop_prob: probability that a hit is randomly dropped (0 = none).
        min_range: metres; voxels entered closer than this are transparent (the ego
            vehicle itself when a dataset voxelizes it).
    """
    num_beams: int = 32
    elevation_range: Tuple[float, float] = (-30.67, 10.67)
    num_azimuth: int = 1084
    max_range: float = 100.0
    sensor2ego: Tuple[Tuple[float, ...], ...] = _pose((0.943713, 0.0, 1.84023))
    elevations: Optional[Tuple[float, ...]] = None
    range_noise_std: float = 0.0
    drop_prob: float = 0.0
    min_range: float = 0.0

    @classmethod
    def preset(cls, name: str, **overrides) -> 'LidarSensor':
        """A named sensor (see ``LIDAR_PRESETS``), with field overrides."""
        if name not in LIDAR_PRESETS:
            raise KeyError(f'unknown LiDAR preset {name!r}; expected one of '
                           f'{sorted(LIDAR_PRESETS)}')
        return replace(LIDAR_PRESETS[name], **overrides)

    def with_pose(self, sensor2ego) -> 'LidarSensor':
        """The same sensor mounted at ``sensor2ego`` (4 x 4 array-like)."""
        m = np.asarray(sensor2ego, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f'sensor2ego: expected a 4 x 4 matrix, found shape {m.shape}')
        return replace(self, sensor2ego=tuple(tuple(float(v) for v in row) for row in m))

    def beam_elevations(self) -> np.ndarray:
        """(num_beams,) elevations in degrees, lowest first."""
        if self.elevations is not None:
            if len(self.elevations) != self.num_beams:
                raise ValueError(f'elevations: expected {self.num_beams} values, '
                                 f'found {len(self.elevations)}')
            return np.asarray(self.elevations, dtype=np.float64)
        return np.linspace(self.elevation_range[0], self.elevation_range[1], self.num_beams)

    def ray_directions(self) -> np.ndarray:
        """(num_beams, num_azimuth, 3) unit ray directions in the sensor frame."""
        el = np.deg2rad(self.beam_elevations())[:, None]  # (H, 1)
        az = 2 * np.pi * np.arange(self.num_azimuth) / self.num_azimuth  # (W,)
        return np.stack(np.broadcast_arrays(np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                            np.sin(el)), axis=-1)  # (H, W, 3)

    @property
    def num_rays(self) -> int:
        return self.num_beams * self.num_azimuth


LIDAR_PRESETS: Dict[str, LidarSensor] = {
    # nuScenes LIDAR_TOP (Velodyne HDL-32E, 20 Hz): 32 beams evenly over -30.67..+10.67 deg,
    # 1084 firings a revolution (a real keyframe sweep has exactly 32 x 1084 points, farthest
    # ~103 m); mounted ~0.94 m ahead of the rear axle at 1.84 m.
    'nuscenes_lidar_top': LidarSensor(),
    # A 64-beam Velodyne HDL-64E (KITTI-like): +2.0..-24.9 deg, 2048 columns, 120 m.
    'velodyne_hdl64': LidarSensor(num_beams=64, elevation_range=(-24.9, 2.0), num_azimuth=2048,
                                  max_range=120.0, sensor2ego=_pose((0.0, 0.0, 1.73))),
    # Waymo top LiDAR: 64 beams over -17.6..+2.4 deg, range image 64 x 2650, 75 m.
    'waymo_top': LidarSensor(num_beams=64, elevation_range=(-17.6, 2.4), num_azimuth=2650,
                             max_range=75.0, sensor2ego=_pose((1.43, 0.0, 2.18))),
}


def load_lidar2ego(pkl_path: str, index: int = 0) -> np.ndarray:
    """The real ``lidar2ego`` (4 x 4) of frame ``index`` of a nuScenes info pkl.

    Any layout the one info reader accepts (:mod:`occworld4d.structures.nuscenes_infos`): mmdet3d
    v1.1 (``lidar_points.lidar2ego``) or temporal / converter infos
    (``lidar2ego_rotation`` + ``lidar2ego_translation``).
    """
    frames = load_info_frames(pkl_path)
    if not 0 <= index < len(frames):
        raise DataFormatError(f'{pkl_path}: frame index {index} out of range; the file has '
                              f'{len(frames)} frames')
    frame = frames[index]
    m = (frame.get('lidar_points') or {}).get('lidar2ego')
    if m is not None:
        return np.asarray(m, dtype=np.float64)
    if 'lidar2ego_rotation' in frame and 'lidar2ego_translation' in frame:
        return pose_matrix(frame['lidar2ego_rotation'], frame['lidar2ego_translation'])
    raise DataFormatError(f'{pkl_path}: frame {index} has neither lidar_points.lidar2ego '
                          '(mmdet3d v1.1) nor lidar2ego_rotation / lidar2ego_translation '
                          f'(temporal infos); keys {sorted(frame)[:12]}')


@dataclass
class LidarScan:
    """A simulated sweep as a range image of H beams x W azimuth steps.

    Attributes:
        points (float, (H, W, 3)): hit points (x, y, z) in the ego frame; NaN where dropped.
        range (float, (H, W)): metres from the sensor; ``inf`` where dropped.
        label (int64, (H, W)): class of the hit voxel; the free label where dropped.
        drop (bool, (H, W)): no return (no hit in the grid within range, or random drop).
        voxel (int64, (H, W, 3)): (i, j, k) of the hit voxel; -1 where dropped.
    """
    points: torch.Tensor
    range: torch.Tensor
    label: torch.Tensor
    drop: torch.Tensor
    voxel: torch.Tensor

    def valid_points(self) -> torch.Tensor:
        """(N, 4) float32 rows (x, y, z, label) of the returns, beam-major order."""
        keep = ~self.drop
        return torch.cat([self.points[keep].float(), self.label[keep].float().unsqueeze(-1)], 1)


@TASK_UTILS.register_module()
class LidarSimulator:
    """Ray-cast a :class:`LidarSensor` into semantic occupancy.

    Args:
        sensor: a :class:`LidarSensor`, a preset name, or a dict of its fields (with an
            optional ``preset`` key), so configs can write
            ``dict(type='LidarSimulator', sensor=dict(preset='waymo_top', max_range=60))``.
        geometry: :class:`GridGeometry` or a dict(pc_range=..., voxel_size=...).
        free_label: free-space class of the grids that will be simulated.
        ignore_labels: other transparent labels (e.g. 255).
        seed: seed of the noise / drop generator (each call re-seeds: deterministic).
        dtype: traversal float type.
    """

    def __init__(self,
                 sensor: Union[LidarSensor, str, dict] = 'nuscenes_lidar_top',
                 geometry: Union[GridGeometry, dict] = GridGeometry(),
                 free_label: int = 17,
                 ignore_labels: Sequence[int] = (),
                 seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        if isinstance(sensor, str):
            sensor = LidarSensor.preset(sensor)
        elif isinstance(sensor, dict):
            sensor = dict(sensor)
            name = sensor.pop('preset', 'nuscenes_lidar_top')
            pose = sensor.pop('sensor2ego', None)
            sensor = LidarSensor.preset(name, **sensor)
            if pose is not None:
                sensor = sensor.with_pose(pose)
        self.sensor = sensor
        self.geometry = GridGeometry(**geometry) if isinstance(geometry, dict) else geometry
        self.free_label = free_label
        self.ignore_labels = tuple(ignore_labels)
        self.seed = seed
        self.dtype = dtype

    def rays(self, device=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Ray origin (3,) and unit directions (H, W, 3) in the ego frame."""
        pose = np.asarray(self.sensor.sensor2ego, dtype=np.float64)
        dirs = self.sensor.ray_directions() @ pose[:3, :3].T  # (H, W, 3) sensor -> ego
        return (torch.as_tensor(pose[:3, 3], device=device).to(self.dtype),
                torch.as_tensor(dirs, device=device).to(self.dtype))

    def simulate(self, semantics: Union[np.ndarray, torch.Tensor]) -> LidarScan:
        """Simulate one sweep.

        Args:
            semantics (int, (X, Y, Z)): class ids in the ego frame; computation happens on
                its device (pass a CUDA tensor to simulate on the GPU).

        Returns:
            LidarScan with (H, W) = (num_beams, num_azimuth).
        """
        grid = to_grid_tensor(semantics)
        origin, dirs = self.rays(grid.device)
        h, w = dirs.shape[:2]
        hits = cast_rays(grid, origin, dirs.reshape(-1, 3), self.geometry, self.free_label,
                         self.ignore_labels, self.sensor.max_range, self.dtype,
                         min_range=self.sensor.min_range)
        rng = hits.range.clone()
        drop = ~hits.hit
        s = self.sensor
        if s.range_noise_std > 0 or s.drop_prob > 0:
            gen = torch.Generator(device=grid.device).manual_seed(self.seed)
            if s.range_noise_std > 0:
                noise = torch.randn(rng.shape, generator=gen, device=grid.device,
                                    dtype=rng.dtype)
                rng = torch.where(drop, rng, (rng + s.range_noise_std * noise).clamp(min=0))
            if s.drop_prob > 0:
                drop = drop | (torch.rand(rng.shape, generator=gen, device=grid.device)
                               < s.drop_prob)
        rng = torch.where(drop, torch.full_like(rng, float('inf')), rng)
        points = origin + dirs.reshape(-1, 3) * torch.where(drop, 0.0, rng).unsqueeze(-1)
        points = torch.where(drop.unsqueeze(-1), torch.full_like(points, float('nan')), points)
        label = torch.where(drop, torch.full_like(hits.label, self.free_label), hits.label)
        voxel = torch.where(drop.unsqueeze(-1), torch.full_like(hits.voxel, -1), hits.voxel)
        return LidarScan(points=points.reshape(h, w, 3), range=rng.reshape(h, w),
                         label=label.reshape(h, w), drop=drop.reshape(h, w),
                         voxel=voxel.reshape(h, w, 3))

    def to_sensor_frame(self, points: torch.Tensor) -> torch.Tensor:
        """Ego-frame points (..., 3+) -> the sensor frame (extra columns such as the label
        are kept), e.g. to compare with real sweeps stored in the LiDAR frame."""
        pose = torch.as_tensor(np.linalg.inv(np.asarray(self.sensor.sensor2ego)),
                               device=points.device, dtype=points.dtype)
        xyz = points[..., :3] @ pose[:3, :3].T + pose[:3, 3]
        return torch.cat([xyz, points[..., 3:]], dim=-1)

    __call__ = simulate
