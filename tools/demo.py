"""The end-to-end demo behind `make demo`, through the same command-line tools users run.

synthetic city (in memory) -> tiny HexPlane VAE (tools/train.py) -> reconstruction mIoU
(tools/test.py) -> latent cache (tools/dataset_converters/cache_latents.py) -> tiny rollout DiT
on the cached latents (tools/train.py, frozen VAE) -> a LEFT-turn command-conditioned 4D scene (tools/sample.py)
-> npz + BEV PNG + GIF in demo_out/.

    python tools/demo.py [--out demo_out] [--vae-epochs N] [--dit-epochs N]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VAE_CFG = 'configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py'
DIT_CFG = 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'
DIT_LATENT_CFG = 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city-latents.py'


def run(step: str, args: list) -> None:
    """Run one CLI step from the repository root; stop the demo with its output on failure."""
    print(f'\n=== {step}: python {" ".join(args)}', flush=True)
    start = time.time()
    proc = subprocess.run([sys.executable] + args, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f'demo step "{step}" failed (exit code {proc.returncode}); see the output above')
    print(f'=== {step} done in {time.time() - start:.0f} s', flush=True)


def latest_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's CheckpointHook recorded last in ``work_dir``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        sys.exit(f'no checkpoint was written to {work_dir} (expected {marker})')
    with open(marker) as f:
        return f.read().strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='demo_out', help='output folder')
    parser.add_argument('--vae-epochs', type=int, default=60)
    parser.add_argument('--dit-epochs', type=int, default=300)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()

    vae_dir, dit_dir = osp.join(out, 'vae'), osp.join(out, 'dit')
    run('1/5 train the tiny HexPlane VAE', [
        'tools/train.py', VAE_CFG, '--work-dir', vae_dir, '--cfg-options',
        f'train_cfg.max_epochs={args.vae_epochs}', f'train_cfg.val_interval={args.vae_epochs}',
        f'default_hooks.checkpoint.interval={args.vae_epochs}', f'randomness.seed={args.seed}'])
    vae_ckpt = latest_checkpoint(vae_dir)

    metrics_file = osp.join(out, 'vae_test_metrics.json')
    run('2/5 reconstruction metrics of the VAE', [
        'tools/test.py', VAE_CFG, vae_ckpt, '--work-dir', vae_dir, '--out', metrics_file])

    latent_dir = osp.join(out, 'latents')
    run('3/5 cache the HexPlane latents of the training windows', [
        'tools/dataset_converters/cache_latents.py', VAE_CFG, vae_ckpt, '--out', latent_dir,
        '--device', 'cpu'])

    run('4/5 train the tiny rollout DiT on the cached latents (frozen VAE)', [
        'tools/train.py', DIT_LATENT_CFG, '--work-dir', dit_dir, '--cfg-options',
        f'model.tokenizer_ckpt={vae_ckpt}', f'train_dataloader.dataset.cache_dir={latent_dir}',
        f'train_cfg.max_epochs={args.dit_epochs}',
        f'default_hooks.checkpoint.interval={args.dit_epochs}', f'randomness.seed={args.seed}'])
    dit_ckpt = latest_checkpoint(dit_dir)

    sample_dir = osp.join(out, 'sample_left_turn')
    run('5/5 sample a LEFT-turn scene', [
        'tools/sample.py', DIT_CFG, dit_ckpt, '--task', 'command', '--command', 'LEFT',
        '--seed', str(args.seed), '--out', sample_dir])

    with open(metrics_file) as f:
        metrics = json.load(f)
    miou = {k: v for k, v in metrics.items() if 'mIoU' in k or k.endswith('/IoU')}
    gifs = sorted(osp.join(sample_dir, f) for f in os.listdir(sample_dir) if f.endswith('.gif'))
    print('\n' + '=' * 72)
    print(f'demo finished in {time.time() - t0:.0f} s')
    print(f'sampled scene (LEFT command): {gifs[0] if gifs else "(no GIF written)"}')
    print('VAE reconstruction on the synthetic-city val split: ' +
          ', '.join(f'{k} = {100 * v:.1f} %' if isinstance(v, float) else f'{k} = {v}'
                    for k, v in miou.items()))
    print(f'everything is in {out}')


if __name__ == '__main__':
    main()
