"""Windows per second of a dataset read from per-frame files vs from the window cache.

Generates random Occ3D-nuScenes frames of the real size (200 x 200 x 16, zip-deflated
``labels.npz`` with both masks, as the real files) in a temporary folder, packs the window
cache and times ``dataset[i]`` for 16-frame windows both ways (same process, same
windows, interleaved rounds, best kept). By default only ``semantics`` is read (what the
generation methods use); ``--masks mask_camera`` adds a mask to both paths.

Example:
    python tools/analysis_tools/benchmark_data.py --scenes 2 --frames 40 --windows 20 --rounds 3
"""
import argparse
import os.path as osp
import tempfile
import time

import numpy as np

from occworld4d.apis.cli import HelpFormatter
from occworld4d.datasets import Occ3DNuScenesDataset, pack_window_cache
from occworld4d.datasets.writers import (build_nuscenes_infos, write_nuscenes_infos,
                                         write_occ3d_nuscenes_frame)

GRID = (200, 200, 16)


def random_frame(rng: np.random.Generator) -> np.ndarray:
    """A blocky street-like frame: ground classes below z=3, boxes of objects, free above."""
    sem = np.full(GRID, 17, np.uint8)
    ground = rng.choice([11, 12, 13, 14], size=(GRID[0] // 8, GRID[1] // 8))
    sem[:, :, :3] = np.kron(ground, np.ones((8, 8), np.uint8))[:, :, None]
    for _ in range(60):
        x, y = rng.integers(0, GRID[0] - 12, size=2)
        w, l, h = rng.integers(2, 12, size=3)
        sem[x:x + w, y:y + l, 3:3 + h] = rng.choice([1, 4, 7, 10, 15, 16])
    noise = rng.random(GRID) < 0.02  # scattered returns (leaves, poles, noise)
    sem[noise] = rng.integers(0, 17, size=int(noise.sum()))
    return sem


def make_dataset(root: str, scenes: int, frames: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    infos = []
    for s in range(scenes):
        poses = np.tile(np.eye(4), (frames, 1, 1))
        poses[:, 0, 3] = np.arange(frames) * 2.0
        scene_infos = build_nuscenes_infos(f'scene-{s:04d}', poses, np.arange(frames) * 500000)
        for info in scene_infos:
            sem = random_frame(rng)
            write_occ3d_nuscenes_frame(
                osp.join(root, 'gts', f'scene-{s:04d}', info['token'], 'labels.npz'), sem,
                sem != 17, rng.random(GRID) < 0.7)
        infos += scene_infos
    ann = osp.join(root, 'infos.pkl')
    write_nuscenes_infos(ann, infos, dict(version='benchmark'))
    return ann


def windows_per_second(dataset, indices) -> float:
    start = time.perf_counter()
    for i in indices:
        dataset[i]
    return len(indices) / (time.perf_counter() - start)


def compare(files, cached, indices, rounds: int = 3):
    """Best-of-``rounds`` windows/s of both readers, rounds interleaved so that load on a
    shared machine hits both alike."""
    best_files = best_cached = 0.0
    for _ in range(rounds):
        best_files = max(best_files, windows_per_second(files, indices))
        best_cached = max(best_cached, windows_per_second(cached, indices))
    return best_files, best_cached


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument('--scenes', type=int, default=2)
    parser.add_argument('--frames', type=int, default=40, help='frames per scene')
    parser.add_argument('--windows', type=int, default=20, help='windows timed per round')
    parser.add_argument('--rounds', type=int, default=3, help='interleaved rounds (best kept)')
    parser.add_argument('--num-frames', type=int, default=16, help='frames per window (T)')
    parser.add_argument('--masks', nargs='*', default=[],
                        help='masks to load too (mask_lidar, mask_camera); the generation '
                        'methods read semantics only')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        ann = make_dataset(root, args.scenes, args.frames)
        kwargs = dict(num_frames=args.num_frames, masks=tuple(args.masks))
        files = Occ3DNuScenesDataset(root, ann, **kwargs)
        pack_window_cache(files, osp.join(root, 'cache'), progress=False)
        cached = Occ3DNuScenesDataset(root, ann, cache_dir=osp.join(root, 'cache'), **kwargs)
        rng = np.random.default_rng(1)
        idx = rng.integers(0, len(files), size=args.windows).tolist()
        cached[idx[0]]  # open the memory maps once
        files_wps, cached_wps = compare(files, cached, idx, args.rounds)
        print(f'window: {args.num_frames} x {GRID[0]} x {GRID[1]} x {GRID[2]} semantics'
              f'{" + " + " + ".join(args.masks) if args.masks else ""}; '
              f'{len(files)} windows in {args.scenes} scenes')
        print(f'best of {args.rounds} interleaved rounds of {args.windows} windows')
        print(f'per-frame npz files: {files_wps:8.1f} windows/s')
        print(f'window cache (mmap): {cached_wps:8.1f} windows/s')
        print(f'speed-up: {cached_wps / files_wps:.1f}x')
        return files_wps, cached_wps


if __name__ == '__main__':
    main()
