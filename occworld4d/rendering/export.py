"""Write the sensor views of an occupancy sequence to disk (used by tools/render_sensors.py
and callable from sampling scripts).

Layout under ``out_dir`` (every file written to a temporary name, then renamed):
    lidar/{t:03d}.bin                   float32 rows (x, y, z, label)
    cameras/{t:03d}/{CAM}_semantic.png  RGB with the palette (black = no hit)
    cameras/{t:03d}/{CAM}_depth.png     uint16 depth in millimetres (0 = no hit)

{CAM}: the camera name as a safe file name (``occworld4d.utils.safe_file_name``: a name
from a calibration file such as ``../../x`` becomes ``.._.._x``; never a path).
"""
import os.path as osp
from typing import Dict, Optional, Union

import numpy as np
import torch

from occworld4d.utils import atomic_path, join_inside, safe_file_name
from .camera import CameraRenderer, PinholeCamera, save_depth_png, save_semantic_png
from .lidar import LidarSimulator


def write_points(path: str, points) -> str:
    """Write (N, 4) (x, y, z, label) as a raw float32 .bin (atomic)."""
    pts = np.asarray(torch.as_tensor(points).detach().cpu(), dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise ValueError(f'{path}: expected points (N, 4) x, y, z, label; found {pts.shape}')
    with atomic_path(path) as tmp:
        np.ascontiguousarray(pts).tofile(tmp)
    return path


def read_points(path: str) -> np.ndarray:
    """Read a .bin written by :func:`write_points` -> (N, 4) float32."""
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def export_sensors(semantics: Union[np.ndarray, torch.Tensor], out_dir: str,
                   simulator: Optional[LidarSimulator] = None,
                   renderer: Optional[CameraRenderer] = None,
                   cameras: Optional[Dict[str, PinholeCamera]] = None,
                   palette: Optional[np.ndarray] = None, lidar_frame: str = 'ego',
                   device: Union[str, torch.device, None] = None) -> Dict[str, int]:
    """Render every frame of ``semantics`` into the LiDAR and / or the cameras and write them.

    Args:
        semantics (int, (T, X, Y, Z) or (X, Y, Z)): class ids in the ego frame.
        out_dir: output folder.
        simulator: LiDAR simulator; None = no LiDAR output.
        renderer, cameras: camera renderer and name -> camera; cameras None / {} = no images.
        palette (K, 3) uint8: colours of the semantic PNGs (required with cameras).
        lidar_frame: ``'ego'`` or ``'sensor'`` coordinates for the points.
        device: where to compute (default: the tensor's device, CPU for numpy).

    Returns:
        ``{'frames': T, 'points': total LiDAR returns, 'images': PNGs written}``.
    """
    grid = torch.as_tensor(np.asarray(semantics) if isinstance(semantics, np.ndarray)
                           else semantics)
    if grid.dim() == 3:
        grid = grid.unsqueeze(0)  # (1, X, Y, Z)
    if grid.dim() != 4:
        raise ValueError(f'semantics: expected (T, X, Y, Z) or (X, Y, Z); found '
                         f'{tuple(grid.shape)}')
    if lidar_frame not in ('ego', 'sensor'):
        raise ValueError(f"lidar_frame: expected 'ego' or 'sensor'; found {lidar_frame!r}")
    if cameras and (renderer is None or palette is None):
        raise ValueError('export_sensors: cameras need a renderer and a palette')
    grid = grid.to(device=device if device is not None else grid.device, dtype=torch.long)
    stats = dict(frames=grid.shape[0], points=0, images=0)
    # camera names come from calibration files: one safe file-name component each
    file_names: Dict[str, str] = {}
    for name in (cameras or {}):
        safe = safe_file_name(name, 'camera name')
        if safe in file_names.values():
            raise ValueError(f'export_sensors: camera names {name!r} and '
                             f'{next(k for k, v in file_names.items() if v == safe)!r} give '
                             f'the same file name {safe!r}')
        file_names[name] = safe
    for t in range(grid.shape[0]):
        if simulator is not None:
            pts = simulator.simulate(grid[t]).valid_points()  # (N, 4) ego frame
            if lidar_frame == 'sensor':
                pts = simulator.to_sensor_frame(pts)
            write_points(osp.join(out_dir, 'lidar', f'{t:03d}.bin'), pts)
            stats['points'] += len(pts)
        for name, cam in (cameras or {}).items():
            maps = renderer.render(grid[t], cam)
            frame, stem = f'{t:03d}', file_names[name]
            save_semantic_png(join_inside(out_dir, 'cameras', frame, f'{stem}_semantic.png'),
                              maps.semantic.cpu(), palette)
            save_depth_png(join_inside(out_dir, 'cameras', frame, f'{stem}_depth.png'),
                           maps.depth.cpu())
            stats['images'] += 2
    return stats
