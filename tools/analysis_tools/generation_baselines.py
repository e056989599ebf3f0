"""The generation floor and trivial baselines on the statistics of ``score_samples.py``.

Every set below has ``--num-samples`` windows and is scored against the val split of CONFIG
exactly as generated samples are (``occworld4d.evaluation.sample_scoring.score_scenes``):

* ``floor`` (train vs val): a random subset of training windows scored as if they were
  samples. Its TV, change rate and FID are what a perfect generator of the training
  distribution gets at this number of windows: the floor every target is relative to. One
  FID at N = 32 varies with the draw, so ``fid_floor`` (every set's, and score_samples')
  is the mean over ``--floor-draws`` random subsets (``fid_ratio`` = FID / that mean; the
  issue's target is a ratio <= 2). Its command accuracy is the command recovery on ground
  truth (each window's own command).
* ``random_training_scene``: the same windows as a generator that returns a random training
  scene. Its memorisation (best IoU against the training windows, which include them) is
  1.0 by construction and measured here as such; a sample set near 1 is a copy, not a
  sample. The memorisation of the val windows (``val_memorisation_*``) is the value of a
  perfect generator that does not copy.
* ``iid_voxels``: every voxel drawn independently from the val split's class frequencies:
  TV near 0 but a change rate and FID far off (TV alone does not judge a sample).
* ``frozen``: frame 0 of each training window repeated: change rate 0, command STATIC.
* ``command_chance``: 0.25 (four commands; the synthetic city's scenarios are balanced).
* ``trajectory_chance``: a generator that ignores its trajectory: the ego trajectory
  recovered from each random training scene (registered between frames, as for samples)
  against the trajectory of val window i, the request of the i-th sample (ADE / FDE / final
  yaw error). ``random_training_scene``'s ``trajectory_*`` are these; the floor's are each
  training window against its own trajectory, and ``val_trajectory_*`` the recovery error on
  the val windows (what a generator that follows its trajectory perfectly gets).

Example (the floor table of docs/evaluation.md):
    OMP_NUM_THREADS=1 python tools/analysis_tools/generation_baselines.py \
        --config configs/_base_/datasets/synthetic_city_tiny.py \
        --cfg-options val_dataloader.dataset.num_scenes=32 \
            train_dataloader.dataset.num_scenes=2000 \
        --extractor configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py \
        --extractor-ckpt work_dirs/fe3d/epoch_10.pth --num-samples 32 --json baselines.json
"""
import argparse
import datetime
import os
import shlex
import sys
from typing import Optional

import numpy as np

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import CLIError, DictAction, HelpFormatter
from occworld4d.evaluation.functional.scene_stats import recover_commands
from occworld4d.evaluation.sample_scoring import (CHANCE_COMMAND_ACCURACY, DEFAULT_FRAME_RATE,
                                                  FIDScorer, score_scenes, scoring_configs,
                                                  split_windows, trajectory_errors)
from occworld4d.structures.vocabularies import COMMANDS, get_vocabulary
from occworld4d.utils import save_json_atomic

BASELINES = ('floor', 'random_training_scene', 'iid_voxels', 'frozen')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Generation floor and trivial baselines',
                                formatter_class=HelpFormatter)
    p.add_argument('--config', required=True,
                   help='config whose val / train dataloader datasets are the splits')
    p.add_argument('--train-config', help='config of the training split (default --config)')
    p.add_argument('--val-split', default='auto', choices=['auto', 'val', 'test'])
    p.add_argument('--num-samples', type=int, default=32,
                   help='windows per baseline set (use the number of samples you score)')
    p.add_argument('--num-frames', type=int,
                   help='frames per window (default the val windows\'); longer training '
                   'windows keep their last frames')
    p.add_argument('--max-val', type=int, help='at most this many val windows (default all)')
    p.add_argument('--max-train', type=int, default=512,
                   help='training windows for memorisation (random subset; 0 = all)')
    p.add_argument('--extractor', help='feature extractor config (for FID)')
    p.add_argument('--extractor-ckpt', help='its trained checkpoint')
    p.add_argument('--floor-draws', type=int, default=5,
                   help='FID floor = mean FID of this many random training subsets')
    p.add_argument('--frame-rate', type=float, help='Hz for command recovery')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', help='write the results here (atomically)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override keys of --config (and --train-config)')
    return p.parse_args(argv)


def baseline_sets(train: np.ndarray, train_cmds: np.ndarray, train_trajs: np.ndarray,
                  val_freq: np.ndarray, num: int, seed: int):
    """{name: (scenes (num, T, X, Y, Z), requested commands, requested trajectories)} of the
    baselines above (the requests are those of the training windows they come from)."""
    g = np.random.default_rng(seed)
    pick = np.sort(g.choice(len(train), min(num, len(train)), replace=False))
    real, cmds = train[pick], [int(c) if c >= 0 else None for c in train_cmds[pick]]
    trajs = list(train_trajs[pick])
    iid = g.choice(len(val_freq), size=real.shape, p=val_freq / val_freq.sum()).astype(
        np.uint8)
    frozen = np.repeat(real[:, :1], real.shape[1], 1)
    return dict(floor=(real, cmds, trajs), iid_voxels=(iid, cmds, trajs),
                frozen=(frozen, cmds, trajs))


def trajectory_chance(scenes: np.ndarray, val: dict,
                      frame_rate: Optional[float] = None) -> dict:
    """Trajectory errors of scenes that ignore their request: the ego trajectory recovered
    from ``scenes[i]`` (N, T, X, Y, Z) against ``val['trajectories'][i % len(val)]`` (the
    trajectory the i-th sample asks for); mean ``ade`` / ``fde`` (m) and ``yaw_error``
    (rad), as :func:`trajectory_errors`."""
    requests = val['trajectories']
    if len(requests) == 0:
        raise ValueError('the val split has no windows to take trajectories from')
    rate = frame_rate or val.get('frame_rate') or DEFAULT_FRAME_RATE
    rec = recover_commands(scenes, get_vocabulary(val['vocabulary']).classes,
                           val['free_label'], val['pc_range'], frame_rate=rate)
    errs = [trajectory_errors(r, requests[i % len(requests)])
            for i, r in enumerate(rec['trajectory'])]
    return {k: float(np.mean([e[k] for e in errs])) for k in ('ade', 'fde', 'yaw_error')}


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg, train_cfg, split = scoring_configs(args)
    try:
        val = split_windows(cfg, split, args.max_val, num_frames=args.num_frames, shuffle=True)
        T = val['semantics'].shape[1]
        tw = split_windows(train_cfg, 'train', args.max_train or None, num_frames=T,
                           shuffle=True, seed=args.seed)
    except ValueError as err:
        raise CLIError(f'{args.config}: {err}') from err
    if tw['semantics'].shape[1:] != val['semantics'].shape[1:]:
        raise CLIError(f'training windows {tw["semantics"].shape[1:]} != val windows '
                       f'{val["semantics"].shape[1:]} (T, X, Y, Z)')
    scorer = None
    if args.extractor:
        try:
            scorer = FIDScorer(args.extractor, args.extractor_ckpt)
        except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
            raise CLIError(f'extractor: {err}') from err
    K = get_vocabulary(val['vocabulary']).num_classes
    val_freq = np.bincount(val['semantics'].reshape(-1), minlength=K).astype(np.float64)
    sets = baseline_sets(tw['semantics'], tw['commands'], tw['trajectories'], val_freq,
                         args.num_samples, args.seed)
    out, cache = {}, {}
    for name, (scenes, cmds, trajs) in sets.items():
        res = score_scenes(scenes, val, tw['semantics'], cmds, trajs, fid_scorer=scorer,
                           fid_floor_pool=tw['semantics'], floor_draws=args.floor_draws,
                           floor_seed=args.seed, val_commands=name == 'floor',
                           frame_rate=args.frame_rate, cache=cache)
        res.pop('per_sample')
        out[name] = res
    # a generator returning a random training scene: the floor's windows, which are among
    # the training windows, so their memorisation is 1 (measured, not assumed)
    rts = dict(out['floor'])
    rts['note'] = ('a random training scene: the floor windows themselves; memorisation 1.0 '
                   'by construction (they are among the training windows)')
    chance = trajectory_chance(sets['floor'][0], val, args.frame_rate)
    rts.update({f'trajectory_{k}': v for k, v in chance.items()})
    rts['note'] += ('; trajectory_*: its recovered path against the requested (val window) '
                    'trajectory, a generator that ignores the trajectory')
    out['random_training_scene'] = rts
    out['trajectory_chance'] = chance
    out['floor']['note'] = ('training windows scored as samples against the val split: the '
                            'floor of TV, change rate and FID at this number of windows')
    out['iid_voxels']['note'] = 'voxels drawn independently from the val class frequencies'
    out['frozen']['note'] = 'frame 0 of each floor window repeated'
    out['command_chance'] = CHANCE_COMMAND_ACCURACY
    out.update(_command=' '.join(shlex.quote(a) for a in [sys.argv[0]] + (
        sys.argv[1:] if argv is None else list(argv))), _config=args.config,
        _val_split=split, _extractor=args.extractor, _extractor_ckpt=args.extractor_ckpt,
        _date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))
    print(f'generation_baselines: {args.num_samples} windows per set '
          f'{tuple(val["semantics"].shape[1:])} vs {len(val["semantics"])} {split} windows of '
          f'{args.config} ({len(tw["semantics"])} training windows for memorisation)')
    print(format_baselines(out))
    if args.json:
        save_json_atomic(args.json, out)
        print(f'written {os.path.abspath(args.json)}')
    return out


def format_baselines(out: dict) -> str:
    def f(v, d=3):
        return '-' if v is None else f'{v:.{d}f}'

    lines = ['| set | TV occupied | TV all | change rate (val) | FID (/ floor) | '
             'memorisation mIoU mean / max | IoU mean / max | command accuracy | '
             'trajectory ADE (m) |',
             '|---|---|---|---|---|---|---|---|---|']
    for name in BASELINES:
        r = out[name]
        fid = '-' if r['fid'] is None else f'{r["fid"]:.3g} ({r["fid_ratio"]:.2f}x)'
        lines.append(
            f'| {name} | {f(r["tv_occupied"])} | {f(r["tv_all"])} | '
            f'{100 * r["change_rate_samples"]:.2f}% ({100 * r["change_rate_val"]:.2f}%) | '
            f'{fid} | {f(r["memorisation_miou_mean"])} / {f(r["memorisation_miou_max"])} | '
            f'{f(r["memorisation_iou_mean"])} / {f(r["memorisation_iou_max"])} | '
            f'{f(r["command_accuracy"], 2)} | {f(r["trajectory_ade"], 2)} |')
    fl = out['floor']
    if fl.get('val_command_confusion') is not None:
        conf = np.array(fl['val_command_confusion'])
        per = ', '.join(f'{c} {conf[i, i]}/{conf[i].sum()}' for i, c in enumerate(COMMANDS)
                        if conf[i].sum())
        extra = f'command recovery on the {conf.sum()} val windows: {per}'
    else:
        extra = None
    lines.append(f'| val windows (no copy) | | | | | {f(fl["val_memorisation_miou_mean"])} / '
                 f'{f(fl["val_memorisation_miou_max"])} | {f(fl["val_memorisation_iou_mean"])}'
                 f' / {f(fl["val_memorisation_iou_max"])} | '
                 f'{f(fl["val_command_accuracy"], 2)} | {f(fl["val_trajectory_ade"], 2)} |')
    tc = out.get('trajectory_chance') or {}
    lines.append(f'| chance | | | | | | | {out["command_chance"]:.2f} | '
                 f'{f(tc.get("ade"), 2)} |')
    if fl['fid_floor'] is not None:
        lines.append(f'\nFID floor (train vs val, {len(fl["fid_floor_values"])} draws of '
                     f'{fl["num_samples"]} training windows): {fl["fid_floor"]:.3g} +- '
                     f'{fl["fid_floor_std"]:.2g} (draws: '
                     + ', '.join(f'{v:.3g}' for v in fl['fid_floor_values']) + ')')
    if extra:
        lines.append(extra)
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
