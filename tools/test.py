"""Evaluate a checkpoint on a config's test split with mmengine's Runner.

Examples:
    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --out results.json
    python tools/test.py CONFIG CHECKPOINT --cfg-options test_evaluator.convention=occworld
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import json
import os.path as osp

from mmengine.config import DictAction
from mmengine.runner import Runner

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import (CLIError, check_checkpoint, default_work_dir, load_config,
                                 setup_launcher_env)
from occworld4d.utils import atomic_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) an occworld4d checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='folder for logs')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (pytorch = torchrun)')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser.parse_args(argv)


def load_weights_strict(runner: Runner, checkpoint: str) -> None:
    """Load ``checkpoint`` into the runner's model; a mismatch is one clear error."""
    try:
        runner.load_checkpoint(checkpoint, map_location='cpu', strict=True)
    except RuntimeError as err:
        lines = [line for line in str(err).splitlines() if line.strip()][:6]
        raise CLIError(f'checkpoint {checkpoint!r} does not match the model of the config:\n  '
                       + '\n  '.join(lines)) from err


def main(argv=None):
    args = parse_args(argv)
    setup_launcher_env(args.launcher)
    check_checkpoint(args.checkpoint)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    cfg.load_from = None  # loaded strictly below
    cfg.resume = False
    for key in ('test_dataloader', 'test_evaluator', 'test_cfg'):
        if cfg.get(key) is None:
            raise CLIError(f'config {args.config!r} has no {key}; it cannot be tested')
    try:
        runner = Runner.from_cfg(cfg)
    except KeyError as err:
        raise CLIError(f'{args.config}: {err.args[0] if err.args else err}') from err
    load_weights_strict(runner, args.checkpoint)
    metrics = runner.test()
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, 'w') as f:
            json.dump({k: (v if isinstance(v, (int, float, str)) else str(v))
                       for k, v in metrics.items()}, f, indent=2)
        print(f'metrics written to {osp.abspath(args.out)}')
    return metrics


if __name__ == '__main__':
    main()
