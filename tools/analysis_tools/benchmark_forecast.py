"""Forecasting throughput and peak memory of the OccWorld world model: KV-cached rollout versus
recomputing the history every step, side by side.

One forecast = encode the H history frames with the tokenizer, roll the world model out for F
frames, decode the F frames to voxels (``OccWorld.predict``). Reported per mode:

* ``FPS`` = forecast frames / wall seconds of the whole forecast (encode + roll out + decode);
* ``FPS (OccWorld's definition)`` = 1 / (encode seconds + roll-out seconds / F), as the
  reference's evaluation script prints it (decoding not counted);
* the roll-out seconds alone, the process CPU time of a forecast (on a shared CPU, CPU time /
  threads approximates the wall time on an idle machine), and peak memory: CUDA
  ``max_memory_allocated`` on a GPU, the process's peak RSS on a CPU (each mode runs in a
  fresh subprocess).

Both modes forecast the same input from the same (random-init, seeded) weights; the tool reports
whether they give identical codes and their agreement per future frame. The two paths compute
the same logits up to float32 rounding (~1e-6 at the reference size); an untrained model's
top-2 logits can be closer than that for a few of the 2,500 tokens, and a flipped code is fed
back, so later frames may drift apart without any difference in the computation. The input is
the real Occ3D-nuScenes frame repeated over time when the sample data is present and the grid
matches (else seeded random class ids).

Examples:
    python tools/analysis_tools/benchmark_forecast.py                       # reference, CPU
    python tools/analysis_tools/benchmark_forecast.py --device cuda --iters 5
    python tools/analysis_tools/benchmark_forecast.py \
        configs/occworld/occworld_wm_tiny_synthetic-city.py --iters 5
    python tools/analysis_tools/benchmark_forecast.py --history 4 --future 6   # DOME's protocol
"""
import argparse
import json
import os.path as osp
import sys
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import occworld4d  # noqa: F401  (registries)
from occworld4d.apis.cli import HelpFormatter, add_device_argument, resolve_device
from occworld4d.evaluation.benchmark import (process_cpu_seconds, process_peak_rss_mb,
                                             real_or_random_clip, run_json_child)
from occworld4d.models.world_models import command_modes, step_displacements
from occworld4d.registry import MODELS
from occworld4d.utils import save_json_atomic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT = 'configs/occworld/occworld_wm_8xb1-200e_occ3d-nuscenes.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Benchmark OccWorld forecasting: cached vs '
                                'uncached rollout', formatter_class=HelpFormatter)
    p.add_argument('config', nargs='?', default=DEFAULT,
                   help=f'world-model config (default: the reference, {DEFAULT})')
    p.add_argument('--history', type=int, default=None, help='H (default: the config\'s)')
    p.add_argument('--future', type=int, default=None, help='F (default: the config\'s)')
    p.add_argument('--batch', type=int, default=1)
    add_device_argument(p)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--iters', type=int, default=1, help='timed forecasts per mode')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed forecasts first (default: 0 on CPU, 2 on CUDA)')
    p.add_argument('--modes', nargs='+', default=['cached', 'uncached'],
                   choices=['cached', 'uncached'])
    p.add_argument('--json', help='write the results to this JSON file')
    p.add_argument('--child', help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _config_path(path: str) -> str:
    full = path if osp.isabs(path) else osp.join(ROOT, path)
    if not osp.isfile(full):
        raise SystemExit(f'benchmark_forecast.py: config {path!r} not found (looked at {full})')
    return full


def _child(args) -> dict:
    """Build the model, time ``args.child`` forecasts, return one result dict."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = Config.fromfile(_config_path(args.config))
    model_cfg = cfg.model.copy()
    model_cfg['tokenizer_ckpt'] = None
    if args.history:
        model_cfg['history_frames'] = args.history
    if args.future:
        model_cfg['future_frames'] = args.future
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = MODELS.build(model_cfg)
    if model.__class__.__name__ != 'OccWorld':
        raise SystemExit(f'benchmark_forecast.py: {args.config} builds '
                         f'{model.__class__.__name__}, not OccWorld')
    model = model.to(device).eval()
    H, Fu = model.history_frames, model.future_frames
    tok = model.tokenizer
    K = tok.num_classes
    h, w = model.transformer.token_shape[1:]
    X, Y, Z = cfg.get('grid_size') or (h * tok.downsample, w * tok.downsample,
                                       tok.semantic.height)
    voxels, source = real_or_random_clip(args.batch, H, (X, Y, Z), K)  # (B, H, X, Y, Z)
    voxels = voxels.to(device)
    traj = torch.zeros(args.batch, H, 3, device=device)
    traj[..., 0] = torch.arange(H, device=device) * 2.0
    steps = step_displacements(traj)
    mode = command_modes(torch.ones(args.batch, dtype=torch.long, device=device))
    use_cache = args.child == 'cached'

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    def forecast():
        sync()
        c0, t0 = process_cpu_seconds(), time.perf_counter()
        ids = model.tokenize(voxels)  # (B, H, h, w)
        sync()
        t1 = time.perf_counter()
        fut, _ = model.forecast(ids, steps, mode, Fu, use_cache=use_cache)
        sync()
        t2 = time.perf_counter()
        pred = tok.decode_indices(fut, size=(X, Y)).argmax(1)  # (B, F, X, Y, Z)
        sync()
        t3 = time.perf_counter()
        return fut, pred, (t1 - t0, t2 - t1, t3 - t2, process_cpu_seconds() - c0)

    warmup = args.warmup if args.warmup is not None else (2 if device.type == 'cuda' else 0)
    with torch.no_grad():
        for _ in range(warmup):
            forecast()
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        runs = [forecast() for _ in range(args.iters)]
    enc, roll, dec = (float(np.median([r[2][i] for r in runs])) for i in range(3))
    total = enc + roll + dec
    cpu = float(np.median([r[2][3] for r in runs]))
    out = dict(config=args.config, mode=args.child, device=str(device), threads=args.threads,
               batch=args.batch, history=H, future=Fu, grid=[X, Y, Z], input_source=source,
               world_model_params=model.world_model_parameters(),
               encode_s=enc, rollout_s=roll, decode_s=dec, total_s=total, cpu_s=cpu,
               fps=args.batch * Fu / total,
               fps_occworld_def=args.batch / (enc + roll / Fu),
               codes=runs[-1][0].cpu().tolist())
    if device.type == 'cuda':
        out['peak_mem_mb'] = torch.cuda.max_memory_allocated(device) / 2 ** 20
        out['peak_mem_kind'] = 'CUDA max_memory_allocated'
    else:
        out['peak_mem_mb'] = process_peak_rss_mb()
        out['peak_mem_kind'] = 'peak RSS'
    return out


def _run(args, mode: str) -> dict:
    cmd = [sys.executable, osp.abspath(__file__), args.config, '--child', mode,
           '--batch', str(args.batch), '--device', args.device, '--threads', str(args.threads),
           '--iters', str(args.iters)]
    for flag, value in (('--history', args.history), ('--future', args.future),
                        ('--warmup', args.warmup)):
        if value is not None:
            cmd += [flag, str(value)]
    return run_json_child(cmd, args.threads, f'benchmark_forecast.py: the {mode} subprocess')


def main(argv=None):
    args = parse_args(argv)
    args.device = resolve_device(args.device)
    if args.child:
        print(json.dumps(_child(args)))
        return None
    _config_path(args.config)
    results = [_run(args, mode) for mode in args.modes]
    r0 = results[0]
    print(f'{r0["config"]}: world model {r0["world_model_params"]:,} params, '
          f'{r0["history"]} -> {r0["future"]} frames, batch {r0["batch"]}, grid {r0["grid"]} '
          f'({r0["input_source"]}), {r0["device"]}'
          + (f', {r0["threads"]} threads' if r0['device'] == 'cpu' else ''))
    for r in results:
        print(f'  {r["mode"]:>8}: {r["fps"]:7.2f} FPS ({r["total_s"]:.2f} s a forecast: encode '
              f'{r["encode_s"]:.2f} + roll-out {r["rollout_s"]:.2f} + decode {r["decode_s"]:.2f}'
              f'; process CPU time {r["cpu_s"]:.2f} s), '
              f'OccWorld-definition FPS {r["fps_occworld_def"]:.2f}, '
              f'{r["peak_mem_kind"]} {r["peak_mem_mb"]:.0f} MiB')
    by_mode = {r['mode']: r for r in results}
    if len(by_mode) == 2:
        c, u = by_mode['cached'], by_mode['uncached']
        cc, uc = np.asarray(c['codes']), np.asarray(u['codes'])  # (B, F, h, w)
        agree = [float((cc[:, f] == uc[:, f]).mean()) for f in range(cc.shape[1])]
        print(f'  cached vs uncached: roll-out {u["rollout_s"] / c["rollout_s"]:.2f}x faster, '
              f'whole forecast {u["total_s"] / c["total_s"]:.2f}x (CPU time '
              f'{u["cpu_s"] / max(c["cpu_s"], 1e-9):.2f}x); identical forecast codes: '
              f'{bool(np.array_equal(cc, uc))} (agreement per future frame: '
              + ', '.join(f'{100 * a:.2f}%' for a in agree) + ')')
        for r in results:
            r['code_agreement_per_frame'] = agree
    for r in results:
        r.pop('codes')
    if args.json:
        save_json_atomic(args.json, results)
    return results


if __name__ == '__main__':
    main()
