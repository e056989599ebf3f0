"""Train a model from a config with mmengine's Runner.

Examples:
    python tools/train.py configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py
    python tools/train.py CONFIG --resume                # resume from the latest checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/epoch_3.pth
    python tools/train.py CONFIG --amp --cfg-options train_cfg.max_epochs=5
    python tools/train.py CONFIG --compile               # torch.compile the train step
    python tools/train.py CONFIG --cfg-options load_from=X.pth load_from_strict=False
    python tools/train.py CONFIG --trust-checkpoint --cfg-options load_from=OLD.pth

Checkpoints load safely (weights_only=True) unless --trust-checkpoint; --resume falls back to
the newest intact checkpoint; a NaN / Inf loss stops with exit code 2; SIGTERM / SIGINT save
iter_N.pth and exit with 128 + signal (143 / 130), --resume continues (docs/reliability.md).
    bash tools/dist_train.sh CONFIG 8                    # 8 GPUs through torchrun
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import (CLIError, HelpFormatter, KeyValueAction,
                                 add_trust_checkpoint_argument,
                                 apply_trust_checkpoint, check_checkpoint, check_vis_backends,
                                 checkpoint_errors,
                                 default_work_dir, load_config, setup_launcher_env)
from occworld4d.apis.launcher import setup_distributed
from occworld4d.engine.hooks import TrainingInterrupted


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an occworld4d model',
                                     formatter_class=HelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CHECKPOINT, or from the latest checkpoint in the '
                        'work dir when no path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the model\'s train_step (mmengine cfg.compile = '
                        'True; the first iterations compile). Measured on CPU in '
                        'docs/benchmarks.md')
    add_trust_checkpoint_argument(parser)
    parser.add_argument('--cfg-options', nargs='+', action=KeyValueAction,
                        help='override config keys, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (pytorch = torchrun)')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_launcher_env(args.launcher)
    cfg = load_config(args.config, args.cfg_options)
    check_vis_backends(cfg)
    cfg.launcher = args.launcher
    setup_distributed(cfg, args.launcher)  # CPU: gloo, DDP without device_ids
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    apply_trust_checkpoint(args, cfg)

    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print('AMP is already enabled in the config')
        elif wrapper == 'OptimWrapper' and not torch.cuda.is_available():
            # mmengine's AmpOptimWrapper needs a GPU; on CPU mixed precision = bf16 autocast
            cfg.optim_wrapper.type = 'CPUAutocastOptimWrapper'
            cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
            print('--amp on CPU: bf16 autocast (CPUAutocastOptimWrapper)')
        elif wrapper == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            raise CLIError(f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper!r}')

    if args.compile and not cfg.get('compile'):  # a compile dict from --cfg-options stays
        cfg.compile = True

    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        check_checkpoint(args.resume)
        cfg.resume, cfg.load_from = True, args.resume
    elif cfg.get('load_from'):
        check_checkpoint(cfg.load_from)

    try:
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else None
        if runner is None:
            runner = RUNNERS.build(cfg)
    except KeyError as err:  # unknown registry name
        raise CLIError(f'{args.config}: {err.args[0] if err.args else err}') from err
    if not any(p.requires_grad for p in runner.model.parameters()):
        raise CLIError(f'{args.config}: the model ({type(runner.model).__name__}) has no '
                       'trainable parameters (a forecasting baseline?); nothing to train. '
                       'Evaluate it with: python tools/test.py CONFIG none')
    try:
        runner.train()
    except checkpoint_errors() as err:  # NaN loss, unreadable / mismatched / refused checkpoint
        raise CLIError(str(err)) from err
    except (AssertionError, ValueError) as err:  # an empty training set, said plainly
        loader = getattr(getattr(runner, '_train_loop', None), 'dataloader', None)
        if loader is None or not hasattr(loader, '__len__') or len(loader) > 0:
            raise
        size = len(loader.dataset) if hasattr(loader.dataset, '__len__') else '?'
        raise CLIError(f'{args.config}: the training set has no batches (train_dataloader.'
                       f'dataset: {type(loader.dataset).__name__} with {size} sample(s), '
                       f'batch_size {loader.batch_size}, drop_last {loader.drop_last}); '
                       'expected at least one batch: check data_root / ann_file / split and '
                       'the dataset options') from err
    except TrainingInterrupted as err:  # SIGTERM / SIGINT: checkpoint saved, 128 + signal
        print(f'interrupted: {err}', file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    print(f'work dir: {osp.abspath(cfg.work_dir)}')


if __name__ == '__main__':
    main()
