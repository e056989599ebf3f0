"""Occupancy -> cameras: semantic and depth maps by ray marching the voxel grid.

One ray per pixel centre goes through the same DDA core as the LiDAR
(:func:`occworld4d.rendering.raycast.cast_rays`); the first occupied voxel gives the pixel's
class and its depth (z in the camera frame, metres). Calibrations are pinhole intrinsics
``cam2img`` (3 x 3) and extrinsics ``cam2ego`` (4 x 4, OpenCV camera axes: x right, y down,
z forward), read from an mmdet3d v1.1 info pkl (``data_list[i]['images'][CAM]``) or a
VAD-style temporal info (``infos[i]['cams'][CAM]``), or from a preset rig with no file
(:data:`CAMERA_RIGS`, ``nuscenes``: six cameras placed like nuScenes'). Images can be rendered
downscaled (``camera.scaled(0.25)``): intrinsics are scaled with the image.
"""
from dataclasses import dataclass, replace
from typing import Dict, Sequence, Union

import numpy as np
import torch
from PIL import Image

from occworld4d.registry import TASK_UTILS
from occworld4d.structures.geometry import pose_matrix
from occworld4d.structures.nuscenes_infos import load_info_frames
from occworld4d.utils import atomic_path
from .palette import colorize
from .raycast import GridGeometry, cast_rays, to_grid_tensor

NUSCENES_CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
                    'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
NUSCENES_IMAGE_SIZE = (1600, 900)  # (width, height) of nuScenes camera images


@dataclass(frozen=True)
class PinholeCamera:
    """A calibrated pinhole camera.

    Attributes:
        name: e.g. ``CAM_FRONT``.
        cam2img (3, 3): intrinsics; pixel (u, v) = (fx x / z + cx, fy y / z + cy), with pixel
            (0, 0) covering [0, 1) x [0, 1) (centre at 0.5, 0.5).
        cam2ego (4, 4): camera pose in the ego frame.
        width, height: image size in pixels.
    """
    name: str
    cam2img: np.ndarray
    cam2ego: np.ndarray
    width: int
    height: int

    def __post_init__(self):
        k, e = np.asarray(self.cam2img, float), np.asarray(self.cam2ego, float)
        if k.shape != (3, 3) or e.shape != (4, 4):
            raise ValueError(f'camera {self.name}: expected cam2img (3, 3) and cam2ego (4, 4); '
                             f'found {k.shape} and {e.shape}')
        object.__setattr__(self, 'cam2img', k)
        object.__setattr__(self, 'cam2ego', e)

    def scaled(self, scale: float) -> 'PinholeCamera':
        """The camera for an image resized by ``scale`` (intrinsics scaled accordingly)."""
        w, h = int(round(self.width * scale)), int(round(self.height * scale))
        k = self.cam2img.copy()
        k[0] *= w / self.width
        k[1] *= h / self.height
        return replace(self, cam2img=k, width=w, height=h)

    def pixel_rays(self) -> np.ndarray:
        """(H, W, 3) ray directions in the camera frame through pixel centres, with z = 1."""
        u, v = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        pix = np.stack([u, v, np.ones_like(u)], axis=-1)  # (H, W, 3) homogeneous pixels
        return pix @ np.linalg.inv(self.cam2img).T

    def project(self, points_ego: np.ndarray) -> np.ndarray:
        """(N, 3) ego points -> (N, 3) rows (u, v, depth) in this camera (depth = z)."""
        ego2cam = np.linalg.inv(self.cam2ego)
        pc = np.asarray(points_ego, float) @ ego2cam[:3, :3].T + ego2cam[:3, 3]  # (N, 3)
        uv = pc @ self.cam2img.T
        return np.concatenate([uv[:, :2] / uv[:, 2:3], pc[:, 2:3]], axis=1)


def cameras_from_info(info: dict, image_size=NUSCENES_IMAGE_SIZE,
                      source: str = 'info') -> Dict[str, PinholeCamera]:
    """Cameras of one frame of an info file.

    Args:
        info: one frame: mmdet3d v1.1 (``images`` with ``cam2img``, ``cam2ego``) or
            VAD-style (``cams`` with ``cam_intrinsic``, ``sensor2ego_rotation`` (w, x, y, z),
            ``sensor2ego_translation``).
        image_size: (width, height) of the original images.
        source: file name used in error messages.
    """
    cams = {}
    if 'images' in info:
        for name, c in info['images'].items():
            for key in ('cam2img', 'cam2ego'):
                if key not in c:
                    raise KeyError(f'{source}: camera {name} has no {key!r} '
                                   f'(found keys {sorted(c)})')
            k = np.asarray(c['cam2img'], float)[:3, :3]
            cams[name] = PinholeCamera(name, k, np.asarray(c['cam2ego'], float), *image_size)
    elif 'cams' in info:
        for name, c in info['cams'].items():
            for key in ('cam_intrinsic', 'sensor2ego_rotation', 'sensor2ego_translation'):
                if key not in c:
                    raise KeyError(f'{source}: camera {name} has no {key!r} '
                                   f'(found keys {sorted(c)})')
            e = pose_matrix(c['sensor2ego_rotation'], c['sensor2ego_translation'])
            cams[name] = PinholeCamera(name, np.asarray(c['cam_intrinsic'], float), e,
                                       *image_size)
    else:
        raise KeyError(f'{source}: a frame needs "images" (mmdet3d v1.1 info) or "cams" '
                       f'(VAD-style info) with camera calibrations; found keys {sorted(info)}')
    return cams


# A nuScenes-like rig, idealised: (name, yaw degrees (left = +), x, y, z mount in metres in
# the ego frame (x forward, y left, z up), focal length in pixels at 1600 x 900). Level
# cameras, principal point at the image centre (a nuScenes keyframe's: within 55 px); yaws,
# mounts (0.1 m) and focal lengths are rounded from its calibration (within 2 degrees, 0.05 m
# and 1 %).
NUSCENES_RIG = (
    ('CAM_FRONT', 0.0, 1.7, 0.0, 1.5, 1260.0),
    ('CAM_FRONT_RIGHT', -55.0, 1.5, -0.5, 1.5, 1260.0),
    ('CAM_FRONT_LEFT', 55.0, 1.5, 0.5, 1.5, 1260.0),
    ('CAM_BACK', 180.0, 0.0, 0.0, 1.6, 800.0),
    ('CAM_BACK_LEFT', 110.0, 1.0, 0.5, 1.6, 1260.0),
    ('CAM_BACK_RIGHT', -110.0, 1.0, -0.5, 1.6, 1260.0),
)
CAMERA_RIGS = dict(nuscenes=NUSCENES_RIG)


def level_camera(name: str, yaw_deg: float, mount, focal: float,
                 image_size=NUSCENES_IMAGE_SIZE) -> PinholeCamera:
    """A level pinhole camera looking along ``yaw_deg`` (0 = ego forward, + = left) from
    ``mount`` (x, y, z) in the ego frame, principal point at the image centre."""
    yaw = np.radians(yaw_deg)
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])  # camera z
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])  # camera x
    down = np.array([0.0, 0.0, -1.0])  # camera y
    cam2ego = np.eye(4)
    cam2ego[:3, :3] = np.stack([right, down, forward], axis=1)
    cam2ego[:3, 3] = mount
    w, h = image_size
    k = np.array([[focal, 0.0, w / 2], [0.0, focal, h / 2], [0.0, 0.0, 1.0]])
    return PinholeCamera(name, k, cam2ego, int(w), int(h))


def preset_cameras(name: str = 'nuscenes', scale: float = 1.0) -> Dict[str, PinholeCamera]:
    """The cameras of a preset rig (:data:`CAMERA_RIGS`), scaled; no calibration file needed."""
    if name not in CAMERA_RIGS:
        raise KeyError(f'unknown camera rig {name!r}; expected one of {sorted(CAMERA_RIGS)} or '
                       'an info .pkl with calibrations')
    cams = {n: level_camera(n, yaw, (x, y, z), f) for n, yaw, x, y, z, f in CAMERA_RIGS[name]}
    return {k: c.scaled(scale) if scale != 1.0 else c for k, c in cams.items()}


def load_cameras(pkl_path: str, index: int = 0, scale: float = 1.0,
                 image_size=NUSCENES_IMAGE_SIZE) -> Dict[str, PinholeCamera]:
    """Cameras of frame ``index`` of an info pkl (mmdet3d v1.1 or VAD-style), scaled; a preset
    rig name (:data:`CAMERA_RIGS`, e.g. ``nuscenes``) gives that rig instead."""
    if pkl_path in CAMERA_RIGS:
        return preset_cameras(pkl_path, scale)
    frames = load_info_frames(pkl_path)
    if not frames:
        raise KeyError(f'{pkl_path}: the info file holds no frames')
    if not 0 <= index < len(frames):
        raise IndexError(f'{pkl_path}: frame index {index} out of range (0..{len(frames) - 1})')
    cams = cameras_from_info(frames[index], image_size, source=pkl_path)
    return {k: c.scaled(scale) if scale != 1.0 else c for k, c in cams.items()}


@dataclass
class CameraMaps:
    """A rendered view.

    Attributes:
        semantic (int64, (H, W)): class of the first occupied voxel; free label if none.
        depth (float, (H, W)): z in the camera frame (metres); 0 where nothing is hit.
        hit (bool, (H, W)): a voxel was hit within range.
    """
    semantic: torch.Tensor
    depth: torch.Tensor
    hit: torch.Tensor


@TASK_UTILS.register_module()
class CameraRenderer:
    """Render semantic and depth maps of an occupancy grid into pinhole cameras.

    Args:
        geometry: grid placement (:class:`GridGeometry` or dict).
        free_label: free-space class of the grids.
        ignore_labels: other transparent labels.
        max_range: metres along a ray beyond which nothing is hit.
        dtype: traversal float type.
    """

    def __init__(self, geometry: Union[GridGeometry, dict] = GridGeometry(),
                 free_label: int = 17, ignore_labels: Sequence[int] = (),
                 max_range: float = float('inf'), dtype: torch.dtype = torch.float32):
        self.geometry = GridGeometry(**geometry) if isinstance(geometry, dict) else geometry
        self.free_label = free_label
        self.ignore_labels = tuple(ignore_labels)
        self.max_range = max_range
        self.dtype = dtype

    def render(self, semantics: Union[np.ndarray, torch.Tensor],
               camera: PinholeCamera) -> CameraMaps:
        """Render one camera; computation runs on ``semantics``' device.

        Args:
            semantics (int, (X, Y, Z)): class ids in the ego frame.
            camera: calibrated camera (already scaled to the output size).
        """
        grid = to_grid_tensor(semantics)
        rays_cam = camera.pixel_rays()  # (H, W, 3), z = 1
        cos_z = 1.0 / np.linalg.norm(rays_cam, axis=-1)  # depth per metre along the unit ray
        dirs = rays_cam @ camera.cam2ego[:3, :3].T  # (H, W, 3) camera -> ego
        hits = cast_rays(grid, torch.as_tensor(camera.cam2ego[:3, 3]),
                         torch.as_tensor(dirs.reshape(-1, 3)), self.geometry, self.free_label,
                         self.ignore_labels, self.max_range, self.dtype)
        h, w = camera.height, camera.width
        depth = torch.where(hits.hit, hits.range, torch.zeros_like(hits.range))
        depth = depth * torch.as_tensor(cos_z.reshape(-1), device=grid.device, dtype=self.dtype)
        return CameraMaps(semantic=hits.label.reshape(h, w), depth=depth.reshape(h, w),
                          hit=hits.hit.reshape(h, w))

    def render_all(self, semantics, cameras: Dict[str, PinholeCamera]) -> Dict[str, CameraMaps]:
        """Render every camera of ``cameras`` (name -> camera)."""
        return {name: self.render(semantics, cam) for name, cam in cameras.items()}


def save_semantic_png(path: str, semantic, palette: np.ndarray) -> str:
    """Write a label map (H, W) as an RGB PNG with ``palette`` (K, 3) (atomic)."""
    img = colorize(np.asarray(torch.as_tensor(semantic).cpu()), palette)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format='PNG')
    return path


def depth_to_uint16(depth, max_mm: int = 65535) -> np.ndarray:
    """Depth in metres (H, W) -> uint16 millimetres (0 = no depth; clipped at ``max_mm``)."""
    d = np.asarray(torch.as_tensor(depth).cpu().double())
    mm = np.rint(np.nan_to_num(d, nan=0.0, posinf=0.0) * 1000.0)
    return np.clip(mm, 0, max_mm).astype(np.uint16)


def save_depth_png(path: str, depth) -> str:
    """Write a depth map in metres (H, W) as a 16-bit PNG in millimetres (atomic)."""
    mm = depth_to_uint16(depth)
    with atomic_path(path) as tmp:
        Image.fromarray(mm).save(tmp, format='PNG')
    return path


def read_depth_png(path: str) -> np.ndarray:
    """Read a depth PNG written by :func:`save_depth_png`; returns metres (float32)."""
    return np.asarray(Image.open(path)).astype(np.float32) / 1000.0
