"""Write synthetic-city sequences as the exact on-disk tree of a real dataset.

The readers that load the real datasets load the output unchanged:

* ``--format carlasc``: ``OUT/Cartesian/<Split>/Town<NN>_<Light|Medium|Heavy>/cartesian/``
  (evaluation labels / point counts / params.json, velodyne, labels, poses.txt relative to
  the first frame, times.txt); read with ``CarlaSCDataset(data_root=OUT, split=<Split>)``.
* ``--format occ3d_nuscenes``: ``OUT/gts/scene-<NNNN>/<token>/labels.npz``, Occ3D's
  ``OUT/annotations.json`` and the temporal info pkl
  ``OUT/nuscenes_synthetic_infos_<split>.pkl`` (schema of the real VAD-style file, with
  boxes of the vehicles and pedestrians); read with
  ``Occ3DNuScenesDataset(data_root=OUT, ann_file=OUT/nuscenes_synthetic_infos_<split>.pkl)``.
* ``--format occ3d_waymo``: ``OUT/<training|validation>/<NNN>/<FFF>_04.npz`` (200 x 200 x 16;
  ``<FFF>.npz`` for a 1600 x 1600 x 64 grid) with ``ego2global``; read with
  ``Occ3DWaymoDataset(data_root=OUT, split=...)``.

Scene ``i`` uses seed ``seed * 1000003 + i`` (as :class:`SyntheticCityDataset`), scenario
``straight, left, right, stop`` cyclically, traffic ``Light, Medium, Heavy`` cyclically.

Example::

    python tools/dataset_converters/make_synthetic_city.py --format carlasc \
        --out data/synthetic_carlasc --num-scenes 12 --num-frames 32 --grid 128 128 8 --seed 0
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from occworld4d.apis.cli import HelpFormatter
from occworld4d.datasets.synthetic_city import (PEDESTRIAN, PRESETS, SCENARIOS,
                                                city_label_lut, generate_sequence)
from occworld4d.datasets.writers import (NUSCENES_LIDAR2EGO_ROTATION,
                                         NUSCENES_LIDAR2EGO_TRANSLATION, build_nuscenes_infos,
                                         occ3d_annotations_from_infos, write_carlasc_sequence,
                                         write_nuscenes_infos, write_occ3d_annotations,
                                         write_occ3d_nuscenes_frame, write_occ3d_waymo_frame)
from occworld4d.structures.geometry import quaternion_to_matrix

FORMATS = ('carlasc', 'occ3d_nuscenes', 'occ3d_waymo')
TRAFFIC = (('Light', 0.5), ('Medium', 1.0), ('Heavy', 1.8))
WAYMO_FINE = dict(grid=(1600, 1600, 64), pc_range=(-80.0, -80.0, -5.0, 80.0, 80.0, 7.8))


def scene_seed(seed: int, index: int) -> int:
    return int(seed) * 1_000_003 + int(index)


def _sequence(fmt: str, index: int, num_frames: int, grid, seed: int, pc_range=None):
    name, density = TRAFFIC[index % len(TRAFFIC)]
    seq = generate_sequence(num_frames, grid, fmt, SCENARIOS[index % len(SCENARIOS)],
                            seed=scene_seed(seed, index), pc_range=pc_range, density=density)
    return name, seq


def make_carlasc(out: str, num_scenes: int, num_frames: int, grid=(128, 128, 8), seed: int = 0,
                 split: str = 'Train') -> List[str]:
    """Write ``num_scenes`` CarlaSC town folders; returns their ``cartesian`` paths."""
    lut = city_label_lut('carlasc_raw')
    pc = PRESETS['carlasc'].pc_range
    written = []
    for i in tqdm(range(num_scenes), desc='CarlaSC scenes'):
        traffic, seq = _sequence('carlasc', i, num_frames, grid, seed)
        seq_dir = osp.join(out, 'Cartesian', split, f'Town{i // 3 + 1:02d}_{traffic}',
                           'cartesian')
        poses = np.linalg.inv(seq['ego_poses'][0])[None] @ seq['ego_poses']  # (T, 4, 4)
        write_carlasc_sequence(seq_dir, lut[seq['semantics']], seq['point_counts'], poses,
                               times=seq['timestamps'],
                               params=dict(min_bound=list(pc[:3]), max_bound=list(pc[3:])),
                               seed=scene_seed(seed, i))
        written.append(seq_dir)
    return written


def _nuscenes_boxes(seq: dict) -> List[dict]:
    """Per-frame boxes in the lidar frame, in the real info file's convention.

    ``gt_boxes`` (N, 7): centre x, y, z, then w, l, h, then ``-yaw_lidar - pi / 2`` (the
    mmdet3d v0.x nuScenes converter's yaw, checked on the real file against its ego-frame
    ``ann_infos``); ``gt_names`` (N,) ``car`` / ``truck`` / ``pedestrian``; ``gt_velocity``
    (N, 2) m/s in the lidar frame.
    """
    ag = seq['agents']
    lidar2ego = np.eye(4)
    lidar2ego[:3, :3] = quaternion_to_matrix(NUSCENES_LIDAR2EGO_ROTATION)
    lidar2ego[:3, 3] = NUSCENES_LIDAR2EGO_TRANSLATION
    names = np.where(ag['cls'] == PEDESTRIAN, 'pedestrian',
                     np.where(ag['size'][:, 0] > 7.0, 'truck', 'car')).astype('<U10')
    out = []
    for t, pose in enumerate(seq['ego_poses']):
        lidar2world = pose @ lidar2ego
        world2lidar = np.linalg.inv(lidar2world)
        n = len(ag['cls'])
        pts = np.zeros((n, 4))
        pts[:, :2] = ag['xy'][:, t]
        pts[:, 2] = seq['ground_z'] + pose[2, 3] + ag['size'][:, 2] / 2  # box centre height
        pts[:, 3] = 1
        centre = (world2lidar @ pts.T).T[:, :3]  # (N, 3)
        lidar_yaw = np.arctan2(lidar2world[1, 0], lidar2world[0, 0])
        yaw_lidar = ag['heading'] - lidar_yaw
        yaw = (-yaw_lidar - 0.5 * np.pi + np.pi) % (2 * np.pi) - np.pi
        vel = ag['velocity'] @ world2lidar[:2, :2].T  # (N, 2)
        keep = np.all(np.abs(centre[:, :2]) < 60.0, axis=1)
        boxes = np.concatenate([centre, ag['size'][:, [1, 0, 2]], yaw[:, None]], 1)
        out.append(dict(gt_boxes=boxes[keep], gt_names=names[keep], gt_velocity=vel[keep]))
    return out


def make_occ3d_nuscenes(out: str, num_scenes: int, num_frames: int, grid=(200, 200, 16),
                        seed: int = 0, split: str = 'train',
                        occ_root: str = './data/nuscenes/gts') -> str:
    """Write the ``gts`` tree and the info pkl; returns the pkl path."""
    lut = city_label_lut('occ3d_nuscenes')
    infos = []
    for i in tqdm(range(num_scenes), desc='Occ3D-nuScenes scenes'):
        _, seq = _sequence('occ3d_nuscenes', i, num_frames, grid, seed)
        scene = f'scene-{i:04d}'
        stamps = 1_500_000_000_000_000 + np.round(seq['timestamps'] * 1e6).astype(np.int64)
        frames = build_nuscenes_infos(scene, seq['ego_poses'], stamps, occ_root=occ_root,
                                      boxes=_nuscenes_boxes(seq))
        sem = lut[seq['semantics']]
        for t, info in enumerate(frames):
            write_occ3d_nuscenes_frame(osp.join(out, 'gts', scene, info['token'], 'labels.npz'),
                                       sem[t], seq['visible'][t], seq['visible'][t])
        infos.extend(frames)
    path = osp.join(out, f'nuscenes_synthetic_infos_{split}.pkl')
    write_nuscenes_infos(path, infos, dict(version='synthetic-city', seed=int(seed)))
    # Occ3D's annotations.json, extended when the other split was written before
    ann_path = osp.join(out, 'annotations.json')
    ann = None
    if osp.isfile(ann_path):
        with open(ann_path) as f:
            ann = json.load(f)
    write_occ3d_annotations(ann_path, occ3d_annotations_from_infos(
        infos, 'val' if split == 'val' else 'train', ann))
    return path


def make_occ3d_waymo(out: str, num_scenes: int, num_frames: int, grid=(200, 200, 16),
                     seed: int = 0, split: str = 'training', free_label: int = 23) -> List[str]:
    """Write ``<split>/<NNN>/<FFF>[_04].npz`` scene folders; returns them."""
    lut = city_label_lut('occ3d_waymo')
    fine = tuple(grid) == WAYMO_FINE['grid']
    written = []
    for i in tqdm(range(num_scenes), desc='Occ3D-Waymo scenes'):
        _, seq = _sequence('occ3d_waymo', i, num_frames, grid, seed,
                           pc_range=WAYMO_FINE['pc_range'] if fine else None)
        sem = lut[seq['semantics']]
        folder = osp.join(out, split, f'{i:03d}')
        for t in range(num_frames):
            name = f'{t:03d}.npz' if fine else f'{t:03d}_04.npz'
            vis = seq['visible'][t]
            write_occ3d_waymo_frame(osp.join(folder, name), sem[t], vis, vis & seq['infov'][t],
                                    seq['infov'][t], ego2global=seq['ego_poses'][t],
                                    free_label=free_label)
        written.append(folder)
    return written


def parse_args(argv: Optional[Sequence[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=HelpFormatter)
    p.add_argument('--format', required=True, choices=FORMATS)
    p.add_argument('--out', required=True, help='output root folder')
    p.add_argument('--num-scenes', type=int, default=4)
    p.add_argument('--num-frames', type=int, default=16)
    p.add_argument('--grid', type=int, nargs=3, metavar=('X', 'Y', 'Z'), default=None,
                   help="default: the format's real grid")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--split', default=None,
                   help='CarlaSC Train/Val/Test; nuScenes train/val; Waymo training/validation')
    p.add_argument('--waymo-free', type=int, default=23, choices=(15, 23),
                   help='free label written in Occ3D-Waymo files')
    args = p.parse_args(argv)
    if args.num_scenes < 1 or args.num_frames < 1:
        p.error('--num-scenes and --num-frames must be >= 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    grid = tuple(args.grid) if args.grid else PRESETS[args.format].grid_size
    common = dict(out=args.out, num_scenes=args.num_scenes, num_frames=args.num_frames,
                  grid=grid, seed=args.seed)
    if args.format == 'carlasc':
        make_carlasc(split=args.split or 'Train', **common)
    elif args.format == 'occ3d_nuscenes':
        make_occ3d_nuscenes(split=args.split or 'train', **common)
    else:
        make_occ3d_waymo(split=args.split or 'training', free_label=args.waymo_free, **common)
    print(f'wrote {args.num_scenes} {args.format} scene(s) of {args.num_frames} frames '
          f'({grid[0]} x {grid[1]} x {grid[2]}) under {args.out}')
    return args.out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
