"""Benchmark one training step of DynamicCity's HexPlane VAE: s/iter and peak memory.

One step = forward + CE / Lovasz / KL losses + backward, in train mode, fp32, on one random
window, for the four encoder x decoder combinations (Projection Module or average pooling x
Expansion & Squeeze or query MLP) at the same input. Each combination runs in a fresh
subprocess so that peak RSS (CPU) / max allocated (CUDA) is its own.

    # CPU, reduced input 8 x 64 x 64 x 8, 2 threads (default)
    python tools/analysis_tools/benchmark_hexplane_vae.py
    # CarlaSC full size 16 x 128 x 128 x 8
    python tools/analysis_tools/benchmark_hexplane_vae.py --full
    # attention-weight dropout off (CPU attention then uses the fused kernel)
    python tools/analysis_tools/benchmark_hexplane_vae.py --attn-drop 0
    # the memory-lean Lovasz-softmax (model.lean_lovasz=True) instead of the autograd one
    python tools/analysis_tools/benchmark_hexplane_vae.py --lovasz lean
    # on a GPU (CUDA max allocated instead of RSS)
    python tools/analysis_tools/benchmark_hexplane_vae.py --device cuda --full

Prints one row per combination (wall seconds and process CPU seconds per step: on a busy
shared machine the CPU seconds divided by the thread count are the steadier estimate) and the
ratios E&S / query for each encoder. Timings on a shared machine are noisy; compare rows of
one run.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from occworld4d.apis.cli import HelpFormatter, add_device_argument, resolve_device
from occworld4d.models.tokenizers.hexplane_vae import HexPlaneVAE

COMBOS = [('transformer', 'expansion_squeeze'), ('transformer', 'query'),
          ('avgpool', 'expansion_squeeze'), ('avgpool', 'query')]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=HelpFormatter)
    p.add_argument('--full', action='store_true', help='16 x 128 x 128 x 8 (CarlaSC)')
    p.add_argument('--shape', type=int, nargs=4, metavar=('T', 'X', 'Y', 'Z'),
                   help='input window (default 8 64 64 8, or the full size with --full)')
    p.add_argument('--num-classes', type=int, default=12)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--iters', type=int, default=3, help='timed steps (after one warm-up)')
    add_device_argument(p)
    p.add_argument('--attn-drop', type=float, default=None,
                   help='projection attention-weight dropout (default: = dropout, 0.1)')
    p.add_argument('--frame-chunk', type=int, default=None,
                   help='checkpointed decoding in chunks of this many frames')
    p.add_argument('--lovasz', choices=['lean', 'autograd'], default='autograd',
                   help='Lovasz-softmax implementation (default autograd, the model default)')
    p.add_argument('--combos', nargs='+', default=None,
                   help='subset, e.g. transformer:expansion_squeeze avgpool:query')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_worker(args) -> dict:
    """One combination in this process; returns the measurements."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    projection, decoder = args.worker.split(':')
    T, X, Y, Z = args.shape
    device = torch.device(resolve_device(args.device))
    model = HexPlaneVAE(num_classes=args.num_classes, num_frames=T, spatial_size=(X, Y, Z),
                        projection=projection, decoder=decoder,
                        projection_attn_drop=args.attn_drop,
                        frame_chunk=args.frame_chunk,
                        lean_lovasz=args.lovasz == 'lean').to(device).train()
    voxels = torch.randint(0, args.num_classes, (1, T, X, Y, Z), device=device)
    times, cpu_times = [], []
    for i in range(args.iters + 1):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        losses = model.loss(dict(voxels=voxels))
        sum(losses.values()).backward()
        model.zero_grad(set_to_none=True)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    out = dict(projection=projection, decoder=decoder, s_iter=statistics.median(times),
               cpu_s_iter=statistics.median(cpu_times),
               peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
               params=sum(p.numel() for p in model.parameters()))
    if device.type == 'cuda':
        out['cuda_max_alloc_gb'] = torch.cuda.max_memory_allocated() / 1e9
    return out


def main(argv=None):
    args = parse_args(argv)
    args.device = resolve_device(args.device)
    if args.shape is None:
        args.shape = [16, 128, 128, 8] if args.full else [8, 64, 64, 8]
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    combos = [tuple(c.split(':')) for c in args.combos] if args.combos else COMBOS
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    base = [sys.executable, os.path.abspath(__file__), '--shape', *map(str, args.shape),
            '--num-classes', str(args.num_classes), '--threads', str(args.threads),
            '--iters', str(args.iters), '--device', args.device, '--lovasz', args.lovasz]
    if args.attn_drop is not None:
        base += ['--attn-drop', str(args.attn_drop)]
    if args.frame_chunk is not None:
        base += ['--frame-chunk', str(args.frame_chunk)]
    print(f'input {"x".join(map(str, args.shape))}, {args.num_classes} classes, device '
          f'{args.device}, {args.threads} threads, fp32, attention-weight dropout '
          f'{"0.1 (= dropout)" if args.attn_drop is None else args.attn_drop}, '
          f'{args.lovasz} Lovasz, median of {args.iters} steps')
    mem_key = 'cuda_max_alloc_gb' if args.device.startswith('cuda') else 'peak_rss_gb'
    rows = {}
    for proj, dec in combos:
        res = subprocess.run(base + ['--worker', f'{proj}:{dec}'], env=env,
                             capture_output=True, text=True)
        if res.returncode != 0:
            print(f'{proj:12s} {dec:18s} FAILED\n{res.stderr[-2000:]}')
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows[(proj, dec)] = r
        print(f'{proj:12s} {dec:18s} {r["s_iter"]:8.3f} s/iter  {r["cpu_s_iter"]:8.3f} CPU s/iter'
              f'  {r[mem_key]:7.3f} GB ({mem_key})  {r["params"]:,} params', flush=True)
    for proj in ('transformer', 'avgpool'):
        es, q = rows.get((proj, 'expansion_squeeze')), rows.get((proj, 'query'))
        if es and q:
            print(f'{proj}: E&S / query = {es["s_iter"] / q["s_iter"]:.2f}x time, '
                  f'{es[mem_key] / q[mem_key]:.2f}x memory')


if __name__ == '__main__':
    main()
