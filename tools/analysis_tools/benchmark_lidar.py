"""Rays per second of the LiDAR simulator: a full sweep over a real Occ3D-nuScenes frame.

Casts the whole beam pattern of a preset (default nuScenes LIDAR_TOP: 32 x 1084 = 34,688
rays) into the real frame ``occ3d_nuscenes/gts/scene-1077/.../labels.npz`` of the shared real
data (or ``--labels``), on the CPU and, when present, on CUDA. Prints the median over
``--repeats`` timed sweeps after a warm-up.

Example:
    python tools/analysis_tools/benchmark_lidar.py --threads 1
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import numpy as np
import torch

from occworld4d.apis.cli import HelpFormatter
from occworld4d.evaluation.benchmark import REAL_OCC3D_FRAME
from occworld4d.rendering.lidar import LIDAR_PRESETS, LidarSimulator
from occworld4d.utils import real_data_root


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Benchmark the LiDAR ray-casting simulator',
                                formatter_class=HelpFormatter)
    p.add_argument('--labels', help='Occ3D labels.npz (default: the shared real frame)')
    p.add_argument('--preset', default='nuscenes_lidar_top', choices=sorted(LIDAR_PRESETS))
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = default)')
    p.add_argument('--devices', nargs='+', default=['cpu', 'cuda'])
    p.add_argument('--dtype', choices=['float32', 'float64'], default='float32')
    return p.parse_args(argv)


def bench(sim: LidarSimulator, grid: torch.Tensor, repeats: int) -> dict:
    sync = torch.cuda.synchronize if grid.is_cuda else (lambda: None)
    scan = sim.simulate(grid)  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        scan = sim.simulate(grid)
        sync()
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    rays = sim.sensor.num_rays
    return dict(seconds=sec, rays=rays, rays_per_s=rays / sec,
                returns=int((~scan.drop).sum()))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.labels or osp.join(real_data_root(), *REAL_OCC3D_FRAME)
    if not osp.isfile(path):
        print(f'error: {path} not found (pass --labels or set OCCWORLD4D_REAL_DATA)',
              file=sys.stderr)
        return 2
    sem = torch.from_numpy(np.load(path)['semantics'].astype(np.int64))
    sim = LidarSimulator(args.preset, dtype=getattr(torch, args.dtype))
    s = sim.sensor
    print(f'{args.preset}: {s.num_beams} beams x {s.num_azimuth} azimuths = {s.num_rays} rays, '
          f'max range {s.max_range} m, grid {tuple(sem.shape)}, {args.dtype}')
    for dev in args.devices:
        if dev.startswith('cuda') and not torch.cuda.is_available():
            print(f'{dev}: skipped (no CUDA device)')
            continue
        name = torch.cuda.get_device_name(dev) if dev.startswith('cuda') else \
            f'cpu ({torch.get_num_threads()} threads)'
        r = bench(sim, sem.to(dev), args.repeats)
        print(f'{dev} [{name}]: {r["seconds"] * 1e3:.1f} ms/sweep, '
              f'{r["rays_per_s"]:,.0f} rays/s, {r["returns"]} returns')
    return 0


if __name__ == '__main__':
    sys.exit(main())
