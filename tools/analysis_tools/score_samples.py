"""Score generated 4D occupancy samples against a config's val split (issue 13 statistics).

Reads sample npz files (``semantics`` (T, X, Y, Z) class ids, as ``tools/sample.py`` and
``SaveOccSamplesHook`` write them), builds the val and train splits of CONFIG
(``val_dataloader.dataset`` / ``train_dataloader.dataset``; a dataset, tokenizer or generator
config) and prints one table, samples next to the val split:

* class frequencies of every class (free included; and among occupied voxels), their total
  variation distance (``tv_occupied``, ``tv_all``);
* per-frame change rate (fraction of voxels whose class changes between consecutive frames)
  and its ratio to the val split's;
* FID in the feature space of a trained extractor (``--extractor CFG --extractor-ckpt CKPT``)
  and the train-vs-val floor at the same number of windows, with their ratio;
* memorisation: each sample's best mIoU (dynamiccity convention) / binary IoU against the
  training windows (a copy scores 1); the val windows' own values are the reference;
* command accuracy: the command recovered from each sample by registering its frames
  against the requested one (the npz's ``command`` or ``--commands``); chance is 0.25; the
  recovery's accuracy on the val windows (their own commands) is printed beside it;
* layout agreement: the sample's own BEV layout (computed from its voxels as
  UniSceneLayout(source='occupancy') computes the condition) against the npz's ``layout``
  (the requested one): mIoU over the layout classes (``layout_miou``, ``layout_iou_<class>``),
  beside the val windows' recomputed layout vs their pipeline's (1.0) and a random training
  scene's layout vs the requested one (``layout_miou_random_train``, the baseline);
* trajectory error: the recovered ego trajectory against the npz's ``trajectory`` (the
  condition of a trajectory-conditioned sample): ADE / FDE (m), final heading error (rad),
  beside the recovery's own error on the val windows.

Examples:
    python tools/analysis_tools/score_samples.py work_dirs/dit/samples \
        --config configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py --json s.json
    python tools/analysis_tools/score_samples.py 'outputs/left/sample_*.npz' \
        --config CONFIG --commands LEFT \
        --extractor configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py \
        --extractor-ckpt work_dirs/fe3d/epoch_10.pth

JSON keys: ``docs/evaluation.md`` ("Scene statistics"). Exit status 2 with one message
naming the file for unreadable samples or a bad config.
"""
import argparse
import datetime
import os.path as osp
import shlex
import sys


import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import CLIError, DictAction, HelpFormatter
from occworld4d.evaluation.sample_scoring import (FIDScorer, SampleFileError, format_table,
                                                  load_sample_layouts, load_samples,
                                                  parse_command, score_scenes,
                                                  scoring_configs, split_windows)
from occworld4d.structures.vocabularies import get_vocabulary
from occworld4d.utils import save_json_atomic


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Score generated samples against a val split',
                                formatter_class=HelpFormatter)
    p.add_argument('samples', nargs='+', help='folders of npz, globs or npz files')
    p.add_argument('--config', required=True,
                   help='config whose val / train dataloader datasets are the splits')
    p.add_argument('--train-config', help='config of the training split (default --config; '
                   'needed when its train split is a latent cache)')
    p.add_argument('--val-split', default='auto', choices=['auto', 'val', 'test'],
                   help='reference split (auto: val_dataloader, else test_dataloader)')
    p.add_argument('--max-val', type=int, help='at most this many val windows (random subset, '
                   'seed 0; default all)')
    p.add_argument('--max-train', type=int, default=512,
                   help='training windows for memorisation (random subset, seed 0; 0 = all)')
    p.add_argument('--extractor', help='feature extractor config (for FID)')
    p.add_argument('--extractor-ckpt', help='its trained checkpoint')
    p.add_argument('--floor-draws', type=int, default=5,
                   help='FID floor = mean FID of this many random subsets of training windows '
                   '(as many as the samples) against the val split')
    p.add_argument('--commands', help='requested command(s): one for all samples or one per '
                   'sample in file order, comma separated (LEFT, RIGHT, FORWARD / STRAIGHT, '
                   'STATIC / STOP or 0-3); default the npz "command"')
    p.add_argument('--frame-rate', type=float,
                   help='Hz of the frames for command recovery (default the split\'s, else '
                   '10; Occ3D-nuScenes keyframes: 2)')
    p.add_argument('--no-val-commands', action='store_true',
                   help='skip the command recovery on the val windows')
    p.add_argument('--json', help='write the statistics here (atomically)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override keys of --config (and --train-config)')
    return p.parse_args(argv)


def requested_commands(arg, npz_commands, num):
    if arg is None:
        return npz_commands
    try:
        cmds = [parse_command(c) for c in arg.split(',') if c.strip()]
    except ValueError as err:
        raise CLIError(f'--commands: {err}') from err
    if len(cmds) == 1:
        return cmds * num
    if len(cmds) != num:
        raise CLIError(f'--commands gives {len(cmds)} commands for {num} samples; give one '
                       'for all or one per sample')
    return cmds


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg, train_cfg, split = scoring_configs(args)
    try:
        files, samples, npz_cmds, npz_trajs = load_samples(args.samples)
        npz_layouts = load_sample_layouts(files)
    except SampleFileError as err:
        raise CLIError(str(err)) from err
    T = samples.shape[1]
    try:
        val = split_windows(cfg, split, args.max_val, num_frames=T, shuffle=True)
        K = get_vocabulary(val['vocabulary']).num_classes
        if int(samples.max()) >= K:
            bad = [f for f, s in zip(files, samples) if int(s.max()) >= K][0]
            raise CLIError(f'{bad}: class ids up to {int(samples.max())}, the val split\'s '
                           f'vocabulary {val["vocabulary"]!r} has {K} classes')
        if samples.shape[1:] != val['semantics'].shape[1:]:
            raise CLIError(f'{files[0]}: samples of shape {samples.shape[1:]} (T, X, Y, Z), '
                           f'the val windows of {args.config} are '
                           f'{val["semantics"].shape[1:]}')
        train = split_windows(train_cfg, 'train', args.max_train or None, num_frames=T,
                              shuffle=True)['semantics']
    except ValueError as err:
        raise CLIError(f'{args.config}: {err}') from err
    cmds = requested_commands(args.commands, npz_cmds, len(samples))
    scorer = None
    if args.extractor:
        try:
            scorer = FIDScorer(args.extractor, args.extractor_ckpt)
        except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
            raise CLIError(f'extractor: {err}') from err
    res = score_scenes(samples, val, train, cmds, npz_trajs, fid_scorer=scorer,
                       fid_floor_pool=train,
                       floor_draws=args.floor_draws, val_commands=not args.no_val_commands,
                       frame_rate=args.frame_rate, layouts=npz_layouts)
    for f, p in zip(files, res['per_sample']):
        p['file'] = f
    res.update(_command=' '.join(shlex.quote(a) for a in [sys.argv[0]] + (
        sys.argv[1:] if argv is None else list(argv))), _config=args.config,
        _train_config=args.train_config or args.config, _val_split=split,
        _extractor=args.extractor, _extractor_ckpt=args.extractor_ckpt,
        _date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))
    print(f'score_samples: {len(files)} sample(s) {tuple(samples.shape[1:])} vs '
          f'{res["num_val"]} {split} windows of {args.config} '
          f'({res["num_train"]} training windows for memorisation)')
    print(format_table(res))
    print('stats: ' + summary_line(res))
    if args.json:
        save_json_atomic(args.json, res)
        print(f'written {osp.abspath(args.json)}')
    return res


def summary_line(res: dict) -> str:
    """One line: TV, change rate vs val, FID vs floor, memorisation, command accuracy."""
    parts = [f'TV {res["tv_occupied"]:.3f} (occupied) / {res["tv_all"]:.3f} (all)',
             f'change rate {100 * res["change_rate_samples"]:.1f}% vs val '
             f'{100 * res["change_rate_val"]:.1f}%']
    if res.get('fid') is not None:
        parts.append(f'FID {res["fid"]:.3g} vs floor {res["fid_floor"]:.3g} '
                     f'(ratio {res["fid_ratio"]:.2f})')
    if res.get('memorisation_miou_max') is not None:
        parts.append(f'memorisation mIoU max {res["memorisation_miou_max"]:.3f} (val '
                     f'{res["val_memorisation_miou_max"]:.3f})')
    if res.get('layout_miou') is not None:
        parts.append(f'layout mIoU {res["layout_miou"]:.3f} (random training scene '
                     f'{res["layout_miou_random_train"] or 0:.3f}; over the requested '
                     f'classes only {res.get("layout_miou_requested") or 0:.3f})')
    if res.get('command_accuracy') is not None:
        parts.append(f'command accuracy {res["command_accuracy"]:.2f} (chance 0.25)')
    return '; '.join(parts)


if __name__ == '__main__':
    main()
