"""The end-to-end demo behind `make demo`, through the same command-line tools users run.

Default (``--method uniscene``): synthetic city (in memory) -> UniScene occupancy KL-VAE
(tools/train.py) -> reconstruction mIoU on the val split (tools/test.py) -> latent cache of the
training windows with their BEV layouts (tools/dataset_converters/cache_latents.py) -> the
layout-conditioned OccDiT on the cached latents (tools/train.py, frozen VAE) -> one 4D scene
per val window, generated from that window's layout (tools/test.py --sample-dir) -> GT |
sample | difference GIFs (tools/visualize.py --compare) -> the samples' statistics next to
the val split's (tools/analysis_tools/score_samples.py).

``--method dynamiccity``: HexPlane VAE + rollout DiT, LEFT-turn command-conditioned scenes
(tools/sample.py); its samples do not yet look like a city (docs/learning.md).

The configs are the demo variants of the CPU learning recipes, sized for 10 minutes on 2 idle
cores: configs/uniscene/uniscene_{vae,dit}_demo_synthetic-city.py and
configs/dynamiccity/dynamiccity_{vae,dit}_demo_synthetic-city.py.

    python tools/demo.py [--method uniscene|dynamiccity] [--out demo_out] [--vae-iters N]
        [--dit-iters N] [--num-samples N]
"""
import argparse
import glob
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PIPELINES = {
    'uniscene': dict(vae='configs/uniscene/uniscene_vae_demo_synthetic-city.py',
                     dit='configs/uniscene/uniscene_dit_demo_synthetic-city.py',
                     vae_name='UniScene occupancy KL-VAE', dit_name='layout OccDiT'),
    'dynamiccity': dict(vae='configs/dynamiccity/dynamiccity_vae_demo_synthetic-city.py',
                        dit='configs/dynamiccity/dynamiccity_dit_demo_synthetic-city.py',
                        vae_name='HexPlane VAE', dit_name='rollout DiT'),
}
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


def latent_scale(latent_dir: str) -> float:
    """1 / std of the cached HexPlane values (all planes, channels, windows): the DiT then
    diffuses latents of unit scale, as Stable Diffusion's scale factor does."""
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
    parser.add_argument('--method', default='uniscene', choices=sorted(PIPELINES),
                        help='uniscene: layout-conditioned scenes; dynamiccity: LEFT-turn '
                        'command-conditioned scenes')
    parser.add_argument('--out', default='demo_out', help='output folder')
    parser.add_argument('--vae-iters', type=int, help='VAE iterations (default: the config)')
    parser.add_argument('--dit-iters', type=int, help='DiT iterations (default: the config)')
    parser.add_argument('--num-samples', type=int, default=8,
                        help='scenes to generate (uniscene: the first N val windows\' layouts)')
    parser.add_argument('--train-scenes', type=int,
                        help='training scenes of both stages (default: the configs)')
    parser.add_argument('--sample-steps', type=int, help='sampling steps (default: the config)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    pipe = PIPELINES[args.method]
    vae_cfg, dit_cfg = pipe['vae'], pipe['dit']
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    times = {}

    def iters(n, val=True):
        if n is None:
            return []
        return [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n if val else n + 1}',
                f'default_hooks.checkpoint.interval={n}']

    scenes = [] if args.train_scenes is None else [
        f'train_dataloader.dataset.num_scenes={args.train_scenes}']
    vae_dir, dit_dir = osp.join(out, 'vae'), osp.join(out, 'dit')
    times['vae'] = run(f'1/7 train the {pipe["vae_name"]}', [
        'tools/train.py', vae_cfg, '--work-dir', vae_dir, '--cfg-options',
        *iters(args.vae_iters), *scenes, f'randomness.seed={args.seed}'])
    vae_ckpt = latest_checkpoint(vae_dir)

    metrics_file = osp.join(out, 'vae_test_metrics.json')
    times['vae_test'] = run('2/7 reconstruction metrics of the VAE (val split)', [
        'tools/test.py', vae_cfg, vae_ckpt, '--work-dir', vae_dir, '--out', metrics_file])

    latent_dir = osp.join(out, 'latents')
    if args.method == 'uniscene':  # the DiT config knows the windows and their layouts
        cache_args = [dit_cfg, vae_ckpt, '--dataset-key', 'latent_source_dataset']
        if args.train_scenes is not None:
            cache_args += ['--cfg-options',
                           f'latent_source_dataset.num_scenes={args.train_scenes}']
    else:
        cache_args = [vae_cfg, vae_ckpt, *(['--cfg-options', *scenes] if scenes else [])]
    times['cache'] = run('3/7 cache the latents of the training windows', [
        'tools/dataset_converters/cache_latents.py', *cache_args, '--out', latent_dir,
        '--device', 'cpu', '--batch-size', '16'])

    scale = latent_scale(latent_dir)
    print(f'latent scale (1 / std of the cached latents): {scale:.4g}', flush=True)
    model_opts = [f'model.tokenizer_ckpt={vae_ckpt}', f'model.latent_scale={scale:.6g}']
    if args.sample_steps is not None:
        model_opts.append(f'model.sample_cfg.num_steps={args.sample_steps}')
    times['dit'] = run(f'4/7 train the {pipe["dit_name"]} on the cached latents (frozen VAE)', [
        'tools/train.py', dit_cfg, '--work-dir', dit_dir, '--cfg-options', *model_opts,
        f'train_dataloader.dataset.cache_dir={latent_dir}', *iters(args.dit_iters, val=False),
        f'randomness.seed={args.seed}'])
    dit_ckpt = latest_checkpoint(dit_dir)

    sample_dir = osp.join(out, 'samples')
    if args.method == 'uniscene':
        times['sample'] = run('5/7 generate one scene from the layout of each val window', [
            'tools/test.py', dit_cfg, dit_ckpt, '--work-dir', osp.join(dit_dir, 'test'),
            '--out', osp.join(out, 'dit_test_metrics.json'), '--sample-dir', sample_dir,
            '--cfg-options', *model_opts, f'test_dataloader.dataset.num_scenes={args.num_samples}',
            'default_hooks.save_samples.save_gt=True', f'randomness.seed={args.seed}'])
        score_extra = []
    else:
        times['sample'] = run('5/7 sample LEFT-turn scenes', [
            'tools/sample.py', dit_cfg, dit_ckpt, '--task', 'command', '--command', 'LEFT',
            '--num-samples', str(args.num_samples), '--seed', str(args.seed), '--out',
            sample_dir, '--cfg-options', *model_opts])
        score_extra = ['--commands', 'LEFT']
    sample_files = sorted(glob.glob(osp.join(sample_dir, '*.npz')))
    if not sample_files:
        sys.exit(f'no samples were written to {sample_dir}')

    start = time.time()
    pictures = render_samples(sample_files, osp.join(out, 'pictures'))
    times['pictures'] = time.time() - start

    stats_file = osp.join(out, 'sample_stats.json')
    times['stats'] = run('7/7 statistics of the samples next to the val split', [
        SCORER, *sample_files, '--config', dit_cfg, '--train-config', vae_cfg, *score_extra,
        '--max-train', '64', '--json', stats_file])
    with open(stats_file) as f:
        res = json.load(f)
    spec = importlib.util.spec_from_file_location('score_samples', osp.join(ROOT, SCORER))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    stats = mod.format_table(res) + '\nstats: ' + mod.summary_line(res)

    with open(metrics_file) as f:
        metrics = json.load(f)
    miou = {k: v for k, v in metrics.items() if k.endswith('/mIoU') or k.endswith('/IoU')}
    print('\n' + '=' * 72)
    print(f'demo finished in {time.time() - t0:.0f} s (' +
          ', '.join(f'{k} {v:.0f} s' for k, v in times.items()) + ')')
    print(f'pictures: {", ".join(pictures) if pictures else "(none written)"}')
    print('VAE reconstruction on the synthetic-city val split: ' +
          ', '.join(f'{k} = {100 * v:.1f} %' for k, v in miou.items()))
    what = 'from val layouts' if args.method == 'uniscene' else 'LEFT command'
    print(f'generated scenes ({what}) vs the val split ({len(sample_files)} samples):')
    print(stats)
    print(f'everything is in {out}')


def render_samples(sample_files, out_dir: str, max_pictures: int = 2) -> list:
    """GIFs of the first samples (tools/visualize.py): GT | sample | difference when the npz
    holds the window's ground truth (``gt_semantics``), else the sample alone."""
    sys.path.insert(0, ROOT)
    from occworld4d.utils import save_npz_atomic  # local: after ROOT is on sys.path
    print(f'\n=== 6/7 pictures of the first {max_pictures} samples', flush=True)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in sample_files[:max_pictures]:
        name = osp.splitext(osp.basename(path))[0]
        gif = osp.join(out_dir, name + '.gif')
        args = ['tools/visualize.py', path, '--out', gif]
        with np.load(path) as z:
            gt = z['gt_semantics'] if 'gt_semantics' in z.files else None
            meta = {k: z[k] for k in ('vocabulary', 'voxel_size', 'pc_range') if k in z.files}
        if gt is not None:
            gt_path = osp.join(out_dir, name + '_gt.npz')
            save_npz_atomic(gt_path, semantics=gt, **meta)
            args += ['--compare', gt_path]
        proc = subprocess.run([sys.executable] + args, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f'demo step "pictures" failed on {path} (exit code {proc.returncode})')
        written.append(gif)
    return written


if __name__ == '__main__':
    main()
