"""Seconds and peak RSS of one forward + loss + backward of a scene tokenizer (CPU, fp32).

Each measurement runs in a fresh Python subprocess, so the peak resident set size is that of
building the model and running the step, nothing else. The input is the real Occ3D-nuScenes
frame repeated over time when the sample data is present (else seeded random class ids).

Examples:
    python tools/analysis_tools/benchmark_tokenizer.py occworld --frames 4 --threads 2
    python tools/analysis_tools/benchmark_tokenizer.py occsora --frames 8 --size 200 200 16
    python tools/analysis_tools/benchmark_tokenizer.py \
        configs/occworld/occworld_vqvae_tiny_synthetic-city.py --size 32 32 8
    python tools/analysis_tools/benchmark_tokenizer.py occworld --compare-lovasz
    python tools/analysis_tools/benchmark_tokenizer.py occworld --model-opt checkpoint_levels=1

Names: occworld, occsora, uniscene (the reference-size model bases); anything else is a
config path. ``--compare-lovasz`` also runs ``lean_lovasz=False`` (unfused ``F.cross_entropy``
+ autograd Lovasz) in its own subprocess. Timings on a shared CPU are noisy: compare runs
side by side; the process CPU time of the step (also printed) divided by the threads
approximates the wall time on an otherwise idle machine.
"""
import argparse
import ast
import json
import os.path as osp
import sys
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import occworld4d  # noqa: F401  (registries)
from occworld4d.evaluation.benchmark import (process_cpu_seconds, process_peak_rss_mb,
                                             real_or_random_clip, run_json_child)
from occworld4d.registry import MODELS
from occworld4d.utils import save_json_atomic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NAMES = {
    'occworld': 'configs/_base_/models/occworld_vqvae.py',
    'occsora': 'configs/_base_/models/occsora_vqvae.py',
    'uniscene': 'configs/_base_/models/uniscene_vae.py',
}
# Tokenizers with a class-embedding front end (``model.semantic``) that this tool can time.
SUPPORTED = ('OccWorldVQVAE', 'OccSoraVQVAE', 'UniSceneOccVAE')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Benchmark one tokenizer training step on CPU',
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('config', help=f'config path or one of {sorted(NAMES)}')
    p.add_argument('--frames', type=int, default=4, help='T frames of the input clip')
    p.add_argument('--size', type=int, nargs=3, default=None, metavar=('X', 'Y', 'Z'),
                   help='voxel grid (default: 200 200 16 for names, else from the model)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--iters', type=int, default=1, help='timed steps (after one warm-up '
                   'step when > 1)')
    p.add_argument('--compare-lovasz', action='store_true',
                   help='also measure with the autograd Lovasz (lean_lovasz=False)')
    p.add_argument('--model-opt', nargs='*', default=[], metavar='KEY=VALUE',
                   help='override model arguments, e.g. checkpoint_levels=1 (Python literals)')
    p.add_argument('--json', help='write the results to this JSON file')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--lean', type=int, default=1, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _config_path(name: str) -> str:
    path = NAMES.get(name, name)
    path = path if osp.isabs(path) else osp.join(ROOT, path)
    if not osp.isfile(path):
        raise SystemExit(f'benchmark_tokenizer: config {name!r} not found (looked at {path}); '
                         f'give a config path or one of {sorted(NAMES)}')
    return path


def _child(args) -> dict:
    """Build, run one (or more) forward + loss + backward, print one JSON line."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = Config.fromfile(_config_path(args.config))
    model_cfg = cfg.model.copy()
    model_cfg['lean_lovasz'] = bool(args.lean)
    for opt in args.model_opt:
        key, sep, value = opt.partition('=')
        if not sep:
            sys.exit(f'benchmark_tokenizer.py: --model-opt {opt!r} is not KEY=VALUE')
        try:
            model_cfg[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            model_cfg[key] = value  # a bare string, e.g. kl_quirk=True is literal, name=foo is not
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = MODELS.build(model_cfg).train()
    K = model.num_classes
    X, Y, Z = args.size or (200, 200, model.semantic.height)
    voxels, source = real_or_random_clip(args.batch, args.frames, (X, Y, Z), K)  # (B, T, X, Y, Z)
    rss_model = process_peak_rss_mb()
    times, cpu_times = [], []
    for i in range(args.iters + (1 if args.iters > 1 else 0)):
        t0, c0 = time.perf_counter(), process_cpu_seconds()
        losses = model.loss(dict(voxels=voxels))
        total = sum(v for k, v in losses.items() if k.startswith('loss_'))
        total.backward()
        times.append(time.perf_counter() - t0)
        cpu_times.append(process_cpu_seconds() - c0)
        model.zero_grad(set_to_none=True)
        del losses, total
    timed = times[1:] if len(times) > 1 else times
    cpu_timed = cpu_times[1:] if len(cpu_times) > 1 else cpu_times
    return dict(config=args.config, model_opts=list(args.model_opt),
                params=sum(p.numel() for p in model.parameters()),
                input=[args.batch, args.frames, X, Y, Z], input_source=source,
                threads=args.threads, lean_lovasz=bool(args.lean),
                sec_per_iter=float(np.median(timed)), all_secs=times,
                cpu_sec_per_iter=float(np.median(cpu_timed)),
                peak_rss_mb=process_peak_rss_mb(),
                rss_after_build_mb=rss_model)


def _run(args, lean: bool) -> dict:
    cmd = [sys.executable, osp.abspath(__file__), args.config, '--child', '--lean', str(int(lean)),
           '--frames', str(args.frames), '--batch', str(args.batch), '--threads',
           str(args.threads), '--iters', str(args.iters)]
    if args.size:
        cmd += ['--size'] + [str(s) for s in args.size]
    if args.model_opt:
        cmd += ['--model-opt'] + list(args.model_opt)
    return run_json_child(cmd, args.threads, 'benchmark_tokenizer: the measuring subprocess')


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(_child(args)))
        return None
    model_type = Config.fromfile(_config_path(args.config)).model.get('type')  # fail early
    if model_type not in SUPPORTED:
        raise SystemExit(f'benchmark_tokenizer.py: {args.config} builds {model_type!r}; this '
                         f'tool times {", ".join(SUPPORTED)} (for HexPlaneVAE use '
                         'tools/analysis_tools/benchmark_hexplane_vae.py)')
    results = [_run(args, lean=True)]
    if args.compare_lovasz:
        results.append(_run(args, lean=False))
    for r in results:
        print(f'{r["config"]} {" ".join(r["model_opts"])}: {r["params"]:,} params, '
              f'input {r["input"]} ({r["input_source"]}), '
              f'{r["threads"]} threads, lean_lovasz={r["lean_lovasz"]}: '
              f'{r["sec_per_iter"]:.2f} s/iter (forward + loss + backward; CPU time '
              f'{r["cpu_sec_per_iter"]:.1f} s = {r["cpu_sec_per_iter"] / r["threads"]:.1f} s '
              f'on {r["threads"]} busy threads), '
              f'peak RSS {r["peak_rss_mb"]:.0f} MiB (after build {r["rss_after_build_mb"]:.0f})')
    if args.json:
        save_json_atomic(args.json, results)
    return results


if __name__ == '__main__':
    main()
