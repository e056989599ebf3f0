"""The end-to-end demo behind `make demo`, through the same command-line tools users run.

synthetic city (in memory) -> HexPlane VAE (tools/train.py) -> reconstruction mIoU on the val
split (tools/test.py) -> latent cache (tools/dataset_converters/cache_latents.py) -> rollout
DiT on the cached latents (tools/train.py, frozen VAE) -> LEFT-turn command-conditioned 4D
scenes (tools/sample.py) -> npz + BEV PNG + GIF in demo_out/ -> their statistics next to the
val split's (tools/analysis_tools/score_samples.py when present, else :func:`scene_statistics`).

The configs are the demo variants of the CPU learning recipes (configs/dynamiccity/README.md,
"Learning on CPU"): dynamiccity_vae_demo_synthetic-city.py and
dynamiccity_dit_demo_synthetic-city.py, sized for 10 minutes on 2 idle cores.

    python tools/demo.py [--out demo_out] [--vae-iters N] [--dit-iters N] [--num-samples N]
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VAE_CFG = 'configs/dynamiccity/dynamiccity_vae_demo_synthetic-city.py'
DIT_CFG = 'configs/dynamiccity/dynamiccity_dit_demo_synthetic-city.py'
SCORER = 'tools/analysis_tools/score_samples.py'


def run(step: str, args: list) -> float:
    """Run one CLI step from the repository root; stop the demo with its output on failure.
    Returns the seconds it took."""
    print(f'\n=== {step}: python {" ".join(args)}', flush=True)
    start = time.time()
    proc = subprocess.run([sys.executable] + args, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f'demo step "{step}" failed (exit code {proc.returncode}); see the output above')
    took = time.time() - start
    print(f'=== {step} done in {took:.0f} s', flush=True)
    return took


def latest_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's CheckpointHook recorded last in ``work_dir``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        sys.exit(f'no checkpoint was written to {work_dir} (expected {marker})')
    with open(marker) as f:
        return f.read().strip()


def scene_statistics(sample_files, config: str) -> str:
    """Class frequencies and per-frame change rate of the samples next to the val split's
    (the fallback when tools/analysis_tools/score_samples.py is absent)."""
    import numpy as np
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    sys.path.insert(0, ROOT)
    from occworld4d.evaluation.functional.scene_stats import (change_rate, class_frequencies,
                                                              total_variation)
    from occworld4d.registry import DATASETS
    from occworld4d.structures.vocabularies import get_vocabulary
    init_default_scope('occworld4d')
    cfg = Config.fromfile(osp.join(ROOT, config))
    ds_cfg = dict(cfg.test_dataloader.dataset, pipeline=[])
    ds = DATASETS.build(ds_cfg)
    val = np.stack([ds[i]['inputs']['voxels'].numpy() for i in range(len(ds))])
    samples = np.stack([np.load(f)['semantics'] for f in sample_files])
    vocab = get_vocabulary(ds.vocabulary)
    K = vocab.num_classes
    fs = class_frequencies(samples, K)
    fv = class_frequencies(val, K)
    lines = [f'{"class":<12} {"samples":>9} {"val":>9}']
    for k, name in enumerate(vocab.classes):
        lines.append(f'{name:<12} {100 * fs[k]:8.2f}% {100 * fv[k]:8.2f}%')
    cs, cv = change_rate(samples), change_rate(val)
    lines.append(f'class-frequency total variation {total_variation(fs, fv):.3f} (target <= 0.05)')
    lines.append(f'per-frame change rate {100 * cs:.1f} % vs val {100 * cv:.1f} % '
                 f'(ratio {cs / max(cv, 1e-9):.2f}, target within 1.5x)')
    return '\n'.join(lines)


def latent_scale(latent_dir: str) -> float:
    """1 / std of the cached HexPlane values (all planes, channels, windows): the DiT then
    diffuses latents of unit scale, as Stable Diffusion's scale factor does."""
    import numpy as np
    values = []
    for f in sorted(glob.glob(osp.join(latent_dir, '*.npz'))):
        with np.load(f) as z:
            values += [z[k].ravel() for k in z.files if k.startswith('latent')]
    if not values:
        sys.exit(f'no HexPlane latents found in {latent_dir}')
    std = float(np.concatenate(values).std())
    return 1.0 / max(std, 1e-6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default='demo_out', help='output folder')
    parser.add_argument('--vae-iters', type=int, help='VAE iterations (default: the config)')
    parser.add_argument('--dit-iters', type=int, help='DiT iterations (default: the config)')
    parser.add_argument('--num-samples', type=int, default=4, help='LEFT-turn scenes to sample')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    times = {}

    def iters(n):
        return [] if n is None else [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                                     f'default_hooks.checkpoint.interval={n}']

    vae_dir, dit_dir = osp.join(out, 'vae'), osp.join(out, 'dit')
    times['vae'] = run('1/6 train the HexPlane VAE', [
        'tools/train.py', VAE_CFG, '--work-dir', vae_dir, '--cfg-options',
        *iters(args.vae_iters), f'randomness.seed={args.seed}'])
    vae_ckpt = latest_checkpoint(vae_dir)

    metrics_file = osp.join(out, 'vae_test_metrics.json')
    times['vae_test'] = run('2/6 reconstruction metrics of the VAE (val split)', [
        'tools/test.py', VAE_CFG, vae_ckpt, '--work-dir', vae_dir, '--out', metrics_file])

    latent_dir = osp.join(out, 'latents')
    times['cache'] = run('3/6 cache the HexPlane latents of the training windows', [
        'tools/dataset_converters/cache_latents.py', VAE_CFG, vae_ckpt, '--out', latent_dir,
        '--device', 'cpu', '--batch-size', '4'])

    scale = latent_scale(latent_dir)
    print(f'latent scale (1 / std of the cached planes): {scale:.4g}', flush=True)
    if args.dit_iters is not None:
        dit_opts = [f'train_cfg.max_iters={args.dit_iters}',
                    f'train_cfg.val_interval={args.dit_iters + 1}',
                    f'default_hooks.checkpoint.interval={args.dit_iters}']
    else:
        dit_opts = []
    times['dit'] = run('4/6 train the rollout DiT on the cached latents (frozen VAE)', [
        'tools/train.py', DIT_CFG, '--work-dir', dit_dir, '--cfg-options',
        f'model.tokenizer_ckpt={vae_ckpt}', f'train_dataloader.dataset.cache_dir={latent_dir}',
        f'model.latent_scale={scale:.6g}', *dit_opts, f'randomness.seed={args.seed}'])
    dit_ckpt = latest_checkpoint(dit_dir)

    sample_dir = osp.join(out, 'sample_left_turn')
    times['sample'] = run('5/6 sample LEFT-turn scenes', [
        'tools/sample.py', DIT_CFG, dit_ckpt, '--task', 'command', '--command', 'LEFT',
        '--num-samples', str(args.num_samples), '--seed', str(args.seed), '--out', sample_dir,
        '--cfg-options', f'model.tokenizer_ckpt={vae_ckpt}', f'model.latent_scale={scale:.6g}'])
    sample_files = sorted(glob.glob(osp.join(sample_dir, 'sample_*.npz')))

    stats_file = osp.join(out, 'sample_stats.json')
    if osp.isfile(osp.join(ROOT, SCORER)):
        times['stats'] = run('6/6 statistics of the samples next to the val split', [
            SCORER, sample_dir, '--config', DIT_CFG, '--train-config', VAE_CFG,
            '--commands', 'LEFT', '--max-train', '64', '--json', stats_file])
        with open(stats_file) as f:
            res = json.load(f)
        from importlib import util
        spec = util.spec_from_file_location('score_samples', osp.join(ROOT, SCORER))
        mod = util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        stats = mod.format_table(res) if hasattr(mod, 'format_table') else ''
        stats += '\nstats: ' + mod.summary_line(res)
    else:
        print('\n=== 6/6 statistics of the samples next to the val split', flush=True)
        stats = scene_statistics(sample_files, DIT_CFG)

    with open(metrics_file) as f:
        metrics = json.load(f)
    miou = {k: v for k, v in metrics.items() if k.endswith('/mIoU') or k.endswith('/IoU')}
    gifs = sorted(glob.glob(osp.join(sample_dir, '*.gif')))
    print('\n' + '=' * 72)
    print(f'demo finished in {time.time() - t0:.0f} s (' +
          ', '.join(f'{k} {v:.0f} s' for k, v in times.items()) + ')')
    print(f'sampled scenes (LEFT command): {", ".join(gifs) if gifs else "(no GIF written)"}')
    print('VAE reconstruction on the synthetic-city val split: ' +
          ', '.join(f'{k} = {100 * v:.1f} %' for k, v in miou.items()))
    print(f'LEFT-turn samples vs the val split ({len(sample_files)} samples):')
    print(stats)
    print(f'everything is in {out}')


if __name__ == '__main__':
    main()
