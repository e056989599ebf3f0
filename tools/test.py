"""Evaluate a checkpoint on a config's test split with mmengine's Runner.

Examples:
    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --out results.json
    python tools/test.py CONFIG CHECKPOINT --cfg-options test_evaluator.convention=occworld
    python tools/test.py configs/occworld/occworld_baseline-copylast_tiny_synthetic-city.py none
    python tools/test.py CONFIG OLD.pth --trust-checkpoint   # full pickle: trusted files only
    bash tools/dist_test.sh CONFIG CHECKPOINT 8

CHECKPOINT may be a work dir (its latest checkpoint is used: ``last_checkpoint``'s target, else
the newest .pth; the chosen file is logged and recorded as ``_checkpoint``), a .pth (loaded
with torch.load(weights_only=True) and the mmengine checkpoint
types allow-listed, docs/reliability.md) or a .safetensors state dict.

Generation configs (a ``GenerationMetric`` test evaluator, see
``configs/_base_/generation_eval.py``) sample one scene per test window, write the samples
as npz (``default_hooks.save_samples``: ``<work_dir>/samples/`` unless ``--sample-dir``) and
score them; they need the feature-extractor checkpoint:
    python tools/test.py configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py DIT_CKPT \
        --out gen.json --cfg-options test_evaluator.checkpoint=EXTRACTOR_CKPT

A model without parameters (the forecasting baselines ``CopyLastForecaster`` /
``EgoWarpForecaster``) is tested with the checkpoint ``none``; any other model refuses it.

``--out`` writes the metrics as a flat JSON object {key: value}, plus ``_command``,
``_config``, ``_checkpoint`` and ``_date`` (keys starting with ``_`` are provenance, not
metrics; ``tools/analysis_tools/results_table.py`` turns such files into tables).
"""
import argparse
import datetime
import os.path as osp
import shlex
import sys

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_checkpoint

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import (CLIError, HelpFormatter, KeyValueAction,
                                 add_trust_checkpoint_argument, apply_trust_checkpoint,
                                 check_vis_backends, checkpoint_errors, default_work_dir,
                                 load_config,
                                 resolve_checkpoint_arg, setup_launcher_env)
from occworld4d.apis.launcher import setup_distributed
from occworld4d.utils import save_json_atomic
from occworld4d.utils.compat import CheckpointLoadError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) an occworld4d checkpoint',
                                     formatter_class=HelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file, a work dir (its latest checkpoint), '
                        'or "none" for a model without parameters (a forecasting baseline)')
    parser.add_argument('--work-dir', help='folder for logs')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--sample-dir', help='write the test predictions (generated scenes) as '
                        'npz to this folder (relative: under the work dir); default: the '
                        "config's default_hooks.save_samples.out_dir, if any")
    parser.add_argument('--cfg-options', nargs='+', action=KeyValueAction,
                        help='override config keys, e.g. test_dataloader.batch_size=2')
    add_trust_checkpoint_argument(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (pytorch = torchrun)')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    return parser.parse_args(argv)


def load_weights_strict(runner: Runner, checkpoint: str) -> None:
    """Load ``checkpoint`` into the runner's model; a mismatch is one clear error.

    Loaded straight into the model before the test starts (not through
    ``runner.load_checkpoint``, whose ``after_load_checkpoint`` hooks expect a running
    Runner: an ``EMAHook`` has no EMA copy yet). A checkpoint saved with an EMAHook holds
    the EMA weights in ``state_dict``, so those are what is tested.
    """
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        revise_keys=[(r'^module\.', '')])
    except CheckpointLoadError as err:  # unreadable, truncated or refused by the safe loader
        raise CLIError(str(err)) from err
    except RuntimeError as err:
        lines = [line for line in str(err).splitlines() if line.strip()][:6]
        raise CLIError(f'checkpoint {checkpoint!r} does not match the model of the config:\n  '
                       + '\n  '.join(lines)) from err


def is_no_checkpoint(checkpoint: str) -> bool:
    """``none`` (any case) stands for "no checkpoint" (a parameter-free model)."""
    return checkpoint.lower() == 'none'


def check_parameter_free(runner: Runner, config_path: str) -> None:
    """Testing without a checkpoint is only for a model that has nothing to load."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    state = model.state_dict()
    if state:
        num = sum(p.numel() for p in model.parameters())
        raise CLIError(f'checkpoint "none" is only for models without parameters (the '
                       f'forecasting baselines); the model of {config_path} '
                       f'({type(model).__name__}) has {num:,} parameters and {len(state)} '
                       'state entries: pass its checkpoint file')


def check_generation_metrics(cfg, config_path: str) -> None:
    """A GenerationMetric needs an extractor config and checkpoint: say so before building."""
    evaluators = cfg.test_evaluator
    is_list = isinstance(evaluators, (list, tuple))
    evaluators = evaluators if is_list else [evaluators]
    for i, ev in enumerate(evaluators):
        if not isinstance(ev, dict) or ev.get('type') != 'GenerationMetric':
            continue
        key = f'test_evaluator.{i}' if is_list else 'test_evaluator'
        extractor = ev.get('extractor')
        if extractor is None:
            raise CLIError(f'{config_path}: {key}.extractor is not set (the path of a '
                           'configs/evaluation/feature_extractor_*.py config)')
        if isinstance(extractor, str) and not osp.isfile(extractor):
            raise CLIError(f'{config_path}: extractor config {extractor!r} does not exist '
                           '(paths are relative to the working directory)')
        if ev.get('checkpoint') is None and not ev.get('allow_untrained', False):
            raise CLIError(
                f'{config_path} scores generated samples with GenerationMetric, which needs the '
                f'feature-extractor checkpoint: train {extractor} with tools/train.py and pass '
                f'--cfg-options {key}.checkpoint=PATH')
        if ev.get('checkpoint') is not None:  # a work dir stands for its latest checkpoint
            ev['checkpoint'] = resolve_checkpoint_arg(ev['checkpoint'], f'{key}.checkpoint')


def main(argv=None):
    args = parse_args(argv)
    command = ' '.join(shlex.quote(a) for a in
                       ['python', 'tools/test.py'] + (sys.argv[1:] if argv is None else argv))
    setup_launcher_env(args.launcher)
    no_checkpoint = is_no_checkpoint(args.checkpoint)
    if not no_checkpoint:  # a work dir stands for its latest checkpoint (logged)
        args.checkpoint = resolve_checkpoint_arg(args.checkpoint)
    elif args.launcher != 'none':  # DDP refuses a model without parameters
        raise CLIError('checkpoint "none" (a parameter-free baseline) runs in one process: '
                       'drop --launcher / use tools/test.py, not dist_test.sh')
    cfg = load_config(args.config, args.cfg_options)
    check_vis_backends(cfg)
    cfg.launcher = args.launcher
    setup_distributed(cfg, args.launcher)  # CPU: gloo, DDP without device_ids
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    apply_trust_checkpoint(args, cfg)
    cfg.load_from = None  # loaded strictly below
    cfg.resume = False
    for key in ('test_dataloader', 'test_evaluator', 'test_cfg'):
        if cfg.get(key) is None:
            raise CLIError(f'config {args.config!r} has no {key}; it cannot be tested')
    check_generation_metrics(cfg, args.config)
    if args.sample_dir:
        hooks = cfg.setdefault('default_hooks', {})
        save = hooks.get('save_samples') or dict(type='SaveOccSamplesHook')
        hooks['save_samples'] = dict(save, out_dir=args.sample_dir)
    try:
        runner = Runner.from_cfg(cfg)
    except checkpoint_errors() as err:  # e.g. the GenerationMetric extractor checkpoint
        raise CLIError(f'{args.config}: {err}') from err
    except (KeyError, FileNotFoundError, ValueError) as err:
        raise CLIError(f'{args.config}: {err.args[0] if err.args else err}') from err
    if no_checkpoint:
        check_parameter_free(runner, args.config)
    else:
        load_weights_strict(runner, args.checkpoint)
    try:
        metrics = runner.test()
    except checkpoint_errors() as err:  # e.g. model.tokenizer_ckpt refused / unreadable
        raise CLIError(str(err)) from err
    if args.out:
        out = {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in metrics.items()}
        out.update(_command=command, _config=args.config, _checkpoint=args.checkpoint,
                   _date=datetime.datetime.now().isoformat(timespec='seconds'))
        save_json_atomic(args.out, out)
        print(f'metrics written to {osp.abspath(args.out)}')
    return metrics


if __name__ == '__main__':
    main()
