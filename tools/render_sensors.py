"""Render a semantic occupancy grid into sensors: LiDAR points and per-camera PNGs.

Input: an ``.npz`` with a semantic grid (X, Y, Z) or a sequence (T, X, Y, Z), e.g. an Occ3D
``labels.npz`` (key ``semantics``), an Occ3D-Waymo frame (``voxel_label``) or a sample written
by ``tools/sample.py``; ``--key`` picks the array when the file has several.

An npz written by the toolkit (``tools/sample.py``, ``export_scene.py``) records its
``vocabulary``, ``pc_range`` and ``voxel_size``; they are used unless given on the command line.

Outputs under ``--out`` (every file written to a temporary name, then renamed):
    lidar/{t:03d}.bin                 float32 rows (x, y, z, label), ego (or --frame sensor)
    cameras/{t:03d}/{CAM}_semantic.png  RGB, vocabulary palette (black = no hit)
    cameras/{t:03d}/{CAM}_depth.png     uint16 depth in millimetres (0 = no hit)

Examples:
    python tools/render_sensors.py scene.npz --cameras --out out/   # preset nuScenes-like rig
    python tools/render_sensors.py labels.npz --calib keyframe.pkl --out out/ --scale 0.25
    python tools/render_sensors.py sample.npz --lidar --lidar-preset waymo_top \\
        --vocabulary occ3d_waymo --out out/
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import numpy as np
from occworld4d.apis.cli import HelpFormatter, add_device_argument, resolve_device
from occworld4d.structures.errors import DataFormatError
from occworld4d.rendering.camera import CAMERA_RIGS, CameraRenderer, load_cameras
from occworld4d.rendering.export import export_sensors
from occworld4d.rendering.lidar import LIDAR_PRESETS, LidarSensor, LidarSimulator, \
    load_lidar2ego
from occworld4d.rendering.palette import get_palette
from occworld4d.rendering.raycast import OCC3D_PC_RANGE, OCC3D_VOXEL_SIZE, GridGeometry
from occworld4d.structures.vocabularies import VOCABULARIES, get_vocabulary

GRID_KEYS = ('semantics', 'pred_semantics', 'gt_semantics', 'voxel_label', 'voxels',
             'occupancy')


class RenderError(ValueError):
    """Bad input to this tool (message names the file and what was expected)."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Render occupancy into LiDAR points and cameras',
                                formatter_class=HelpFormatter)
    p.add_argument('input', help='.npz with a semantic grid (X, Y, Z) or (T, X, Y, Z)')
    p.add_argument('--key', help=f'array name in the npz (default: first of {GRID_KEYS})')
    p.add_argument('--calib', help=f'camera calibrations: a preset rig ({", ".join(CAMERA_RIGS)}'
                   ': nuScenes-like six cameras, no file; the default of --cameras) or an info '
                   'pkl (mmdet3d v1.1 or VAD-style)')
    p.add_argument('--calib-index', type=int, default=0, help='frame of the calib pkl')
    p.add_argument('--out', default='work_dirs/render_sensors', help='output folder')
    p.add_argument('--lidar', action='store_true', help='write LiDAR points')
    p.add_argument('--cameras', action='store_true', help='write camera PNGs')
    p.add_argument('--scale', type=float, default=0.25, help='image scale (1 = 1600 x 900)')
    p.add_argument('--lidar-preset', default='nuscenes_lidar_top', choices=sorted(LIDAR_PRESETS))
    p.add_argument('--lidar-pose', choices=['preset', 'calib'], default='preset',
                   help='LiDAR mounting: the preset, or lidar2ego of the --calib keyframe')
    p.add_argument('--frame', choices=['ego', 'sensor'], default='ego',
                   help='frame of the written LiDAR points')
    p.add_argument('--min-range', type=float, default=0.0,
                   help='LiDAR: voxels entered closer than this (m) are transparent')
    p.add_argument('--range-noise', type=float, default=0.0, help='LiDAR range noise std (m)')
    p.add_argument('--drop-prob', type=float, default=0.0, help='LiDAR random ray drop rate')
    p.add_argument('--seed', type=int, default=0, help='seed of the LiDAR noise / drop')
    p.add_argument('--vocabulary', choices=sorted(VOCABULARIES),
                   help='default: the npz\'s "vocabulary", else occ3d_nuscenes')
    p.add_argument('--free-label', type=int, help='override the vocabulary free label')
    p.add_argument('--pc-range', type=float, nargs=6,
                   help=f'default: the npz\'s "pc_range", else Occ3D\'s {OCC3D_PC_RANGE}')
    p.add_argument('--voxel-size', type=float, nargs=3,
                   help=f'default: the npz\'s "voxel_size", else {OCC3D_VOXEL_SIZE}')
    add_device_argument(p)
    args = p.parse_args(argv)
    if not args.lidar and not args.cameras:  # neither flag: everything that can be done
        args.lidar, args.cameras = True, args.calib is not None
    return args


def load_grid(path: str, key: Optional[str], geometry: GridGeometry) -> np.ndarray:
    """(T, X, Y, Z) integer grid from ``path``; clear errors for missing keys / bad shapes."""
    if not osp.isfile(path):
        raise RenderError(f'{path}: no such file')
    with np.load(path) as z:
        keys = list(z.keys())
        if key is None:
            found = [k for k in GRID_KEYS if k in keys]
            if not found and len(keys) == 1:
                found = keys
            if not found:
                raise RenderError(f'{path}: no semantic grid found; expected one of {GRID_KEYS} '
                                  f'(or pass --key); found keys {keys}')
            key = found[0]
        elif key not in keys:
            raise RenderError(f'{path}: key {key!r} not found; found keys {keys}')
        grid = np.asarray(z[key])
    if grid.ndim == 3:
        grid = grid[None]
    if grid.ndim != 4 or tuple(grid.shape[1:]) != geometry.shape:
        raise RenderError(f'{path}[{key!r}]: expected a grid (X, Y, Z) or (T, X, Y, Z) with '
                          f'(X, Y, Z) = {geometry.shape} (pc_range {geometry.pc_range}, voxel '
                          f'{geometry.voxel_size}); found shape {grid.shape}')
    if not np.issubdtype(grid.dtype, np.integer):
        raise RenderError(f'{path}[{key!r}]: expected integer class ids; found {grid.dtype}')
    return grid


def npz_meta(path: str) -> dict:
    """``vocabulary`` / ``pc_range`` / ``voxel_size`` recorded in a toolkit npz (may be empty)."""
    if not osp.isfile(path):
        raise RenderError(f'{path}: no such file')
    with np.load(path) as z:
        meta = {}
        if 'vocabulary' in z.files:
            meta['vocabulary'] = str(z['vocabulary'])
        for key, n in (('pc_range', 6), ('voxel_size', 3)):
            if key in z.files and np.asarray(z[key]).shape == (n, ):
                meta[key] = tuple(float(v) for v in z[key])
    return meta


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    meta = npz_meta(args.input)
    args.vocabulary = args.vocabulary or meta.get('vocabulary', 'occ3d_nuscenes')
    if args.vocabulary not in VOCABULARIES:
        raise RenderError(f'{args.input}: vocabulary {args.vocabulary!r} is not one of '
                          f'{sorted(VOCABULARIES)}; pass --vocabulary')
    pc_range = args.pc_range or meta.get('pc_range', OCC3D_PC_RANGE)
    voxel_size = args.voxel_size or meta.get('voxel_size', OCC3D_VOXEL_SIZE)
    geometry = GridGeometry(tuple(pc_range), tuple(voxel_size))
    voc = get_vocabulary(args.vocabulary)
    free = voc.free_label if args.free_label is None else args.free_label
    grid = load_grid(args.input, args.key, geometry)
    if args.cameras and not args.calib:
        args.calib = 'nuscenes'
        print('cameras: the preset nuScenes-like rig (pass --calib KEYFRAME_PKL for real '
              'calibrations)')
    if args.calib and args.calib not in CAMERA_RIGS and not osp.isfile(args.calib):
        raise RenderError(f'--calib {args.calib}: no such file and not a preset rig '
                          f'({", ".join(CAMERA_RIGS)})')
    if args.lidar_pose == 'calib' and (not args.calib or args.calib in CAMERA_RIGS):
        raise RenderError('--lidar-pose calib needs --calib KEYFRAME_PKL (an info file)')
    sensor = LidarSensor.preset(args.lidar_preset, min_range=args.min_range,
                                range_noise_std=args.range_noise, drop_prob=args.drop_prob)
    if args.lidar_pose == 'calib':
        sensor = sensor.with_pose(load_lidar2ego(args.calib, args.calib_index))
    cameras = load_cameras(args.calib, args.calib_index, args.scale) if args.cameras else {}
    sim = LidarSimulator(sensor, geometry, free_label=free, seed=args.seed)
    renderer = CameraRenderer(geometry, free_label=free)
    stats = export_sensors(grid, args.out, sim if args.lidar else None, renderer, cameras,
                           get_palette(args.vocabulary), args.frame,
                           resolve_device(args.device))
    print(f"{stats['frames']} frame(s): {stats['points']} LiDAR points, "
          f"{stats['images']} camera PNGs")
    print(f'wrote {osp.abspath(args.out)}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (RenderError, DataFormatError, KeyError, IndexError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
