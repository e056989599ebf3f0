"""Seconds per iteration, samples per second, peak memory and parameters of a config.

Examples:
    python tools/analysis_tools/benchmark.py CONFIG --task train --iters 20 --warmup 3
    python tools/analysis_tools/benchmark.py CONFIG --task infer --device cuda --json out.json
    python tools/analysis_tools/benchmark.py CONFIG --task data --iters 50
    python tools/analysis_tools/benchmark.py CONFIG --task sample --cfg-options model.x=1

Tasks: train = model.train_step (forward, loss, backward, optimizer step); infer =
model.val_step; sample = the model's ``sample`` method with the batch's conditions, then
``decode_latent`` when the model has one (a scene, as generation produces; --no-decode
times the latents only; the decoder alone is reported as decode_sec_per_iter), else
mode='predict'; data = dataset[i]. The reported time is the median of --iters timed iterations after --warmup
untimed ones; memory is the CUDA max allocated (GPU) or the peak RSS (CPU) of the timed
iterations. Timings on a shared CPU are noisy: compare configs side by side.
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import DictAction

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import (CLIError, HelpFormatter, add_device_argument, load_config,
                                 resolve_device)
from occworld4d.evaluation.benchmark import TASKS, format_param_table, run_benchmark
from occworld4d.utils import save_json_atomic


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark an occworld4d config',
                                     formatter_class=HelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--task', choices=TASKS, default='train')
    parser.add_argument('--iters', type=int, default=10, help='timed iterations')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations first')
    parser.add_argument('--batch-size', type=int, help='override the dataloader batch size')
    add_device_argument(parser)
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (CPU)')
    parser.add_argument('--no-decode', action='store_true',
                        help="--task sample: time the latents only (skip decode_latent)")
    parser.add_argument('--json', help='write the result as JSON to this path')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. model.num_layers=2')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.device = resolve_device(args.device)
    if args.iters < 1 or args.warmup < 0:
        raise CLIError(f'--iters must be >= 1 and --warmup >= 0 (got {args.iters}, '
                       f'{args.warmup})')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    result = run_benchmark(cfg, args.task, args.iters, args.warmup, args.batch_size,
                           args.device, decode=not args.no_decode)
    result['config'] = osp.abspath(args.config)
    mem = result['memory']
    print(f'{args.task}: {result["sec_per_iter"]:.4f} s/iter (median of {args.iters}), '
          f'{result["samples_per_sec"]:.2f} samples/s, batch {result["batch_size"]}, '
          f'{result["device"]}')
    if 'sample_fn' in result:
        print(f'timed: {result["sample_fn"]}' + (
            f'; decode_latent alone {result["decode_sec_per_iter"]:.4f} s/iter'
            if 'decode_sec_per_iter' in result else ''))
    if mem['peak_mb'] is not None:
        print(f'peak memory ({mem["kind"]}, {mem["scope"]}): {mem["peak_mb"]:.1f} MiB')
    if 'params' in result:
        print(format_param_table(result['params']))
    if args.json:
        save_json_atomic(args.json, result)
        print(f'wrote {args.json}')
    return result


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
