"""The learning benchmark: train each method's CPU recipe under its budget, evaluate it on the
synthetic-city val split and print the evidence table (issue 13).

Every stage runs through the same command-line tools a user runs (``tools/train.py``,
``tools/test.py``, ``tools/dataset_converters/cache_latents.py``,
``tools/analysis_tools/score_samples.py``), in subprocesses, one after the other. A stage-2
recipe trains on the checkpoint its stage-1 recipe wrote in the same run (or ``--reuse``
picks up the checkpoints of an earlier run in the same ``--work-dir``).

    python tools/analysis_tools/learning_benchmark.py --recipes all --json work_dirs/learning.json
    python tools/analysis_tools/learning_benchmark.py --recipes dynamiccity-vae occworld-vqvae
    python tools/analysis_tools/learning_benchmark.py --recipes occworld-wm --reuse \
        --markdown docs/learning.md

Output: one row per (recipe, metric):
``method | stage | metric | value | baseline | target | minutes | pass``, printed as a markdown
table, optionally written to ``--json`` (rows + the commands of every step) and ``--markdown``
(the table and its commands, the format of docs/learning.md).

Baselines, one per kind of recipe:
* tokenizers: the **mean training frame** -- every voxel takes the class it has most often at
  that (x, y, z) over the training frames (computed here, no learning), scored with the
  recipe's own val metric;
* forecasters: the registered copy-last and ego-warp (static world) forecasters through
  ``tools/test.py`` on the same split, and their constant-velocity planning;
* generators: the train-vs-val floor and a random training scene, from
  ``tools/analysis_tools/score_samples.py`` (class-frequency total variation, change rate,
  FID with the project's trained extractor, memorisation, command recovery).

A recipe's budget is its config's loop length, sized from measured runs. The table reports
the wall minutes of each training run and the CPU minutes of its process; on a shared machine
the wall time is inflated by the other load, so a run counts as over budget (and its rows
fail) only when both the wall minutes and the CPU minutes / ``--threads`` exceed the budget
(CPU minutes / threads is what the run takes on that many idle cores).

``--collect a.json b.json`` merges the rows of earlier runs (e.g. one per method, run apart)
into one table, without training anything.
"""
import argparse
import datetime
import glob
import json
import os
import os.path as osp
import re
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from occworld4d.apis.cli import load_config  # noqa: E402  (after ROOT is on sys.path)
from occworld4d.evaluation.functional.iou import (  # noqa: E402
    confusion_matrix, iou_from_confusion)
from occworld4d.registry import DATASETS  # noqa: E402
from occworld4d.utils import atomic_path, save_json_atomic  # noqa: E402


class BenchmarkError(SystemExit):
    """One clear message, exit code 2."""

    def __init__(self, message: str):
        print(f'error: {message}', file=sys.stderr)
        super().__init__(2)


@dataclass
class Recipe:
    """One stage of one method on the synthetic city."""
    name: str  # e.g. 'dynamiccity-vae'
    method: str  # 'DynamicCity'
    stage: str  # 'HexPlane VAE'
    kind: str  # 'tokenizer' | 'forecaster' | 'generator'
    config: str  # the recipe config (relative to the repository root)
    budget_min: float  # training budget on 2 idle cores
    parent: Optional[str] = None  # stage-1 recipe whose checkpoint this one loads
    targets: Dict[str, Tuple[str, float]] = field(default_factory=dict)  # metric -> (op, value)
    latent_cache: bool = False  # stage 2 trains from cache_latents.py of the parent
    # config key of the voxel dataset that cache_latents.py encodes with THIS recipe's config
    # (e.g. windows with their layouts); None = the parent config's train dataset
    cache_source: Optional[str] = None
    baselines: Dict[str, str] = field(default_factory=dict)  # name -> config (forecasters)
    sample_options: List[str] = field(default_factory=list)  # extra tools/test.py options
    frames_per_second: float = 2.0  # forecasters: frame rate of the test windows
    conditions: Tuple[str, ...] = ()  # generators: 'command' | 'layout' | 'trajectory'
    # generators whose config has no GenerationMetric: the extractor FID is measured with
    extractor: str = 'configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py'


TOKENIZER_METRIC = 'dynamiccity@valid_mask/mIoU'
RECIPES: List[Recipe] = [
    Recipe('dynamiccity-vae', 'DynamicCity', 'HexPlane VAE', 'tokenizer',
           'configs/dynamiccity/dynamiccity_vae_cpu-15min_synthetic-city.py', 15,
           targets={TOKENIZER_METRIC: ('>=', 0.85)}),
    Recipe('dynamiccity-dit', 'DynamicCity', 'rollout DiT', 'generator',
           'configs/dynamiccity/dynamiccity_dit_cpu-30min_synthetic-city.py', 30,
           parent='dynamiccity-vae', latent_cache=True, conditions=('command', )),
    Recipe('occsora-vqvae', 'OccSora', '4D VQ tokenizer', 'tokenizer',
           'configs/occsora/occsora_vqvae_cpu-15min_synthetic-city.py', 15,
           targets={TOKENIZER_METRIC: ('>=', 0.60)}),
    Recipe('occsora-dit', 'OccSora', 'trajectory DiT', 'generator',
           'configs/occsora/occsora_dit_cpu-30min_synthetic-city.py', 30,
           parent='occsora-vqvae', latent_cache=True, cache_source='latent_source_dataset',
           conditions=('trajectory', )),
    Recipe('occworld-vqvae', 'OccWorld', 'VQ-VAE', 'tokenizer',
           'configs/occworld/occworld_vqvae_cpu-15min_synthetic-city.py', 15,
           targets={TOKENIZER_METRIC: ('>=', 0.85)}),
    Recipe('occworld-wm', 'OccWorld', 'world model', 'forecaster',
           'configs/occworld/occworld_wm_cpu-30min_synthetic-city.py', 30,
           parent='occworld-vqvae',
           baselines={'copy-last': 'configs/occworld/occworld_baseline-copylast_cpu_synthetic-city.py',
                      'ego-warp': 'configs/occworld/occworld_baseline-egowarp_cpu_synthetic-city.py'}),
    Recipe('occworld-wm-plan', 'OccWorld', 'world model, given ego plan', 'forecaster',
           'configs/occworld/occworld_wm-plan_cpu-30min_synthetic-city.py', 30,
           parent='occworld-vqvae',
           baselines={'copy-last': 'configs/occworld/occworld_baseline-copylast_cpu_synthetic-city.py',
                      'ego-warp': 'configs/occworld/occworld_baseline-egowarp_cpu_synthetic-city.py'}),
    Recipe('uniscene-vae', 'UniScene', 'occupancy KL-VAE', 'tokenizer',
           'configs/uniscene/uniscene_vae_cpu-15min_synthetic-city.py', 15,
           targets={TOKENIZER_METRIC: ('>=', 0.85)}),
    Recipe('uniscene-dit', 'UniScene', 'layout OccDiT', 'generator',
           'configs/uniscene/uniscene_dit_cpu-30min_synthetic-city.py', 30,
           parent='uniscene-vae', latent_cache=True, cache_source='latent_source_dataset',
           conditions=('layout', )),
]
BY_NAME = {r.name: r for r in RECIPES}

# Forecasting rows: (metric key in tools/test.py's JSON, what the table calls it, higher=better)
FORECAST_KEYS = [('occworld/mIoU_{h}', 'mIoU@{s}', True), ('occworld/IoU_{h}', 'IoU@{s}', True)]
FORECAST_CLASSES = ('road', 'building')
PLAN_KEYS = ('plan/L2_1s', 'plan/L2_2s', 'plan/L2_3s')


# ----------------------------------------------------------------------------- steps
class Runner:
    """Runs the CLI steps of the benchmark and keeps their commands and times."""

    def __init__(self, work_dir: str, threads: int, dry_run: bool = False):
        self.work_dir, self.threads, self.dry_run = work_dir, threads, dry_run
        self.commands: List[str] = []

    def run(self, script: str, *args: str) -> Tuple[float, float]:
        """``python script args`` from the repository root; (wall, CPU) minutes it took."""
        cmd = [sys.executable, script, *map(str, args)]
        shown = ' '.join(shlex.quote(c) for c in ['python', script, *map(str, args)])
        self.commands.append(shown)
        print(f'\n=== {shown}', flush=True)
        if self.dry_run:
            return 0.0, 0.0
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
        start, cpu0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, cwd=ROOT, env=env)
        if proc.returncode != 0:
            raise BenchmarkError(f'step failed (exit {proc.returncode}): {shown}')
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return (time.time() - start) / 60.0, cpu / 60.0


def last_checkpoint(work_dir: str) -> str:
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise BenchmarkError(f'no checkpoint in {work_dir} (expected {marker}); train the '
                             'recipe first (drop --reuse)')
    with open(marker) as f:
        path = f.read().strip()
    if not osp.isfile(path):
        raise BenchmarkError(f'{marker} names {path!r}, which does not exist')
    return path


def minutes_from_logs(work_dir: str) -> Optional[float]:
    """Wall minutes of an earlier training run in ``work_dir``: for every mmengine log
    (``<work_dir>/<timestamp>/<timestamp>.log``, one per start or resume), from its first line
    to its last training line, summed. None if no log is found."""
    stamp = re.compile(r'^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) - mmengine')
    total, found = 0.0, False
    for log in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))):
        first = last = None
        with open(log, errors='replace') as f:
            for line in f:
                m = stamp.match(line)
                if not m:
                    continue
                t = datetime.datetime.strptime(m.group(1), '%Y/%m/%d %H:%M:%S')
                first = first or t
                if '(train)' in line:
                    last = t
        if first and last:
            total += (last - first).total_seconds() / 60.0
            found = True
    return total if found else None


def load_json(path: str) -> dict:
    if not osp.isfile(path):
        raise BenchmarkError(f'expected the metrics file {path!r}; the step did not write it')
    with open(path) as f:
        return json.load(f)


def passes(value: Optional[float], op: str, target: float) -> Optional[bool]:
    if value is None:
        return None
    return {'>=': value >= target, '<=': value <= target, '>': value > target,
            '<': value < target}[op]


# ----------------------------------------------------------------------------- baselines
def mean_scene_baseline(config: str, cfg_options: Optional[dict] = None,
                        max_train: int = 512) -> Optional[float]:
    """Val mIoU (dynamiccity convention, valid mask if the val set has one) of the mean
    training frame: every voxel takes the class it has most often at that (x, y, z) over the
    frames of (at most ``max_train``) training windows, in every val frame.

    The trivial answer of a tokenizer: the best constant frame it could output. Per (x, y, z)
    and not per (t, x, y, z), so that per-frame tokenizers (training items of one frame) and
    window tokenizers get the same baseline.
    """
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)

    def frames(item) -> np.ndarray:
        v = item['inputs']['voxels'].numpy()
        return v.reshape(-1, *v.shape[-3:]).astype(np.int64)  # (T, X, Y, Z)

    first = frames(train[0])
    K = int(cfg.model.get('num_classes') or cfg.model.get('tokenizer', {}).get('num_classes')
            or first.max() + 1)
    X, Y, Z = first.shape[1:]
    counts = np.zeros((K, X * Y * Z), np.int64)  # (K, X*Y*Z)
    cells = np.arange(X * Y * Z)
    for i in range(min(len(train), max_train)):
        for f in frames(train[i]):
            np.add.at(counts, (f.reshape(-1), cells), 1)
    mean_frame = torch.from_numpy(counts.argmax(0).reshape(X, Y, Z))
    cm = 0
    free = int(val.metainfo.get('free_label', 0))
    for i in range(len(val)):
        item = val[i]
        gt = item['inputs']['voxels']
        sample = item['data_samples']
        mask = sample.valid_mask if 'valid_mask' in sample else None
        pred = mean_frame.expand(gt.shape)
        cm = cm + confusion_matrix(pred, gt, K, mask=mask)
    return float(iou_from_confusion(cm, 'dynamiccity', free).miou)


# ----------------------------------------------------------------------------- recipes
def run_recipe(recipe: Recipe, runner: Runner, ckpts: Dict[str, str], reuse: bool,
               cfg_overrides: Sequence[str], configs: Dict[str, str]) -> List[dict]:
    """Train (unless reused) and evaluate one recipe; rows of the table."""
    config = configs.get(recipe.name, recipe.config)
    if not osp.isfile(osp.join(ROOT, config)):
        if recipe.name in configs:
            raise BenchmarkError(f'recipe {recipe.name}: config {config!r} does not exist')
        print(f'--- {recipe.name}: no recipe config yet ({config}); reported as missing')
        return [dict(method=recipe.method, stage=recipe.stage, recipe=recipe.name,
                     metric='(no recipe yet)', value=None, baseline=None, target=None,
                     minutes=None, budget_min=recipe.budget_min, passed=False,
                     note=f'{config} does not exist yet')]
    wdir = osp.join(runner.work_dir, recipe.name)
    options = list(cfg_overrides)
    if recipe.parent:
        parent_ckpt = ckpts.get(recipe.parent)
        if parent_ckpt is None:
            parent_ckpt = last_checkpoint(osp.join(runner.work_dir, recipe.parent))
        options.append(f'model.tokenizer_ckpt={parent_ckpt}')
        if recipe.latent_cache:
            parent_cfg = configs.get(recipe.parent, BY_NAME[recipe.parent].config)
            cache = osp.join(wdir, 'latents')
            if not (reuse and osp.isdir(cache)):
                source = (['--dataset-key', recipe.cache_source] if recipe.cache_source
                          else [])
                runner.run('tools/dataset_converters/cache_latents.py',
                           config if recipe.cache_source else parent_cfg, parent_ckpt,
                           '--out', cache, '--device', 'cpu', '--batch-size', '16', *source)
            options.append(f'train_dataloader.dataset.cache_dir={cache}')
    minutes = cpu_minutes = None
    if reuse and osp.isfile(osp.join(wdir, 'last_checkpoint')):
        minutes = minutes_from_logs(wdir)  # the earlier run's wall time (no CPU time)
        print(f'--- {recipe.name}: reusing {last_checkpoint(wdir)} (trained in '
              f'{"?" if minutes is None else f"{minutes:.1f}"} wall minutes)')
    else:
        args = [config, '--work-dir', wdir]
        if options:
            args += ['--cfg-options', *options]
        minutes, cpu_minutes = runner.run('tools/train.py', *args)
    ckpt = last_checkpoint(wdir) if not runner.dry_run else osp.join(wdir, 'CKPT')
    ckpts[recipe.name] = ckpt
    test_opts = [o for o in options if not o.startswith('train_dataloader.')]
    rows = []
    base = dict(method=recipe.method, stage=recipe.stage, recipe=recipe.name,
                minutes=minutes, cpu_minutes=cpu_minutes, threads=runner.threads,
                budget_min=recipe.budget_min)

    def test(cfg_path: str, checkpoint: str, tag: str, extra: Sequence[str] = ()) -> dict:
        out = osp.join(wdir, f'test_{tag}.json')
        args = [cfg_path, checkpoint, '--work-dir', osp.join(wdir, f'test_{tag}'), '--out', out]
        opts = [o for o in test_opts if tag == 'model' or not o.startswith('model.')]
        if opts or extra:
            args += ['--cfg-options', *opts, *extra]
        runner.run('tools/test.py', *args)
        return {} if runner.dry_run else load_json(out)

    if recipe.kind == 'tokenizer':
        metrics = test(config, ckpt, 'model')
        baseline = None if runner.dry_run else mean_scene_baseline(config, None)
        for key, (op, target) in recipe.targets.items():
            value = metrics.get(key)
            rows.append(dict(base, metric=key, value=value, baseline=baseline,
                             baseline_name='mean training frame', target=f'{op} {target:g}',
                             passed=passes(value, op, target)))
    elif recipe.kind == 'forecaster':
        metrics = test(config, ckpt, 'model')
        refs = {name: test(cfg_path, 'none', name) for name, cfg_path in recipe.baselines.items()}
        horizons = sorted({int(k.rsplit('_', 1)[1]) for k in metrics
                           if k.startswith('occworld/mIoU_') and k.rsplit('_', 1)[1].isdigit()})
        for h in horizons:
            seconds = f'{h / recipe.frames_per_second:g}s'
            for pattern, label, _ in FORECAST_KEYS:
                key = pattern.format(h=h)
                value = metrics.get(key)
                best = max((r.get(key) for r in refs.values() if r.get(key) is not None),
                           default=None)
                margin = 0.05 if h == horizons[0] and 'mIoU' in key else 0.0
                op_target = None if best is None else best + margin
                rows.append(dict(base, metric=label.format(s=seconds), value=value,
                                 baseline=best, baseline_name='best of ' + ', '.join(refs),
                                 target=None if best is None else
                                 (f'>= baseline + {margin:g}' if margin else '> baseline'),
                                 passed=None if best is None or value is None else
                                 (value >= op_target if margin else value > best)))
        for cls in FORECAST_CLASSES:
            key = f'occworld/IoU_{cls}'
            best = max((r.get(key) for r in refs.values() if r.get(key) is not None),
                       default=None)
            value = metrics.get(key)
            rows.append(dict(base, metric=f'IoU {cls} (mean over steps)', value=value,
                             baseline=best, baseline_name='best of ' + ', '.join(refs),
                             target='> baseline', passed=passes(value, '>', best)
                             if best is not None else None))
        for key in [k for k in PLAN_KEYS if runner.dry_run or k in metrics]:  # none: plan given
            value = metrics.get(key)
            best = min((r.get(key) for r in refs.values() if r.get(key) is not None),
                       default=None)
            rows.append(dict(base, metric=key, value=value, baseline=best,
                             baseline_name='constant velocity', target='< baseline',
                             passed=passes(value, '<', best) if best is not None else None))
    elif recipe.kind == 'generator':
        parent_cfg = configs.get(recipe.parent, BY_NAME[recipe.parent].config) \
            if recipe.parent else None
        rows += score_generator(recipe, config, ckpt, runner, wdir, base, parent_cfg, reuse,
                                test_opts)
    if minutes is not None and cpu_minutes is None:  # reused: no CPU time to judge by
        for row in rows:
            row['note'] = 'trained in an earlier run (wall minutes from its log; budget not judged)'
    elif minutes is not None and min(minutes, cpu_minutes / runner.threads) > recipe.budget_min:
        cpu = '?' if cpu_minutes is None else f'{cpu_minutes:.1f}'
        for row in rows:
            row['passed'] = False
            row['note'] = (f'over budget ({minutes:.1f} wall, {cpu} CPU minutes on '
                           f'{runner.threads} threads > {recipe.budget_min:g} min)')
    return rows


def extractor_of(config: str) -> Tuple[Optional[str], Optional[str]]:
    """(extractor config, the --cfg-options key of its checkpoint) of a generation config."""
    cfg = load_config(config, None)
    evaluators = cfg.get('test_evaluator')
    is_list = isinstance(evaluators, (list, tuple))
    for i, ev in enumerate(evaluators if is_list else [evaluators]):
        if isinstance(ev, dict) and ev.get('type') == 'GenerationMetric':
            return ev.get('extractor'), (f'test_evaluator.{i}.checkpoint' if is_list
                                         else 'test_evaluator.checkpoint')
    return None, None


def score_generator(recipe: Recipe, config: str, ckpt: str, runner: Runner, wdir: str,
                    base: dict, parent_config: Optional[str], reuse: bool,
                    test_opts: Sequence[str] = ()) -> List[dict]:
    """Sample one scene per val window (tools/test.py), score the samples and the trivial
    baselines on the same statistics (score_samples.py, generation_baselines.py)."""
    extractor, ckpt_key = extractor_of(osp.join(ROOT, config))
    if extractor is None:  # no GenerationMetric in the config: FID from score_samples only
        extractor = recipe.extractor
    extra, fid_args = [], []
    if extractor:
        ext_dir = osp.join(runner.work_dir, 'extractors',
                           osp.splitext(osp.basename(extractor))[0])
        if not (reuse and osp.isfile(osp.join(ext_dir, 'last_checkpoint'))):
            runner.run('tools/train.py', extractor, '--work-dir', ext_dir)
        ext_ckpt = (last_checkpoint(ext_dir) if not runner.dry_run
                    else osp.join(ext_dir, 'CKPT'))
        extra = [f'{ckpt_key}={ext_ckpt}'] if ckpt_key else []
        fid_args = ['--extractor', extractor, '--extractor-ckpt', ext_ckpt]
    sample_dir = osp.join(wdir, 'samples')
    runner.run('tools/test.py', config, ckpt, '--work-dir', osp.join(wdir, 'test_model'),
               '--out', osp.join(wdir, 'test_model.json'), '--sample-dir', sample_dir,
               *recipe.sample_options, *(['--cfg-options', *test_opts, *extra]
                                         if list(test_opts) + extra else []))
    train_args = ['--train-config', parent_config] if recipe.latent_cache else []
    score_json, base_json = osp.join(wdir, 'scores.json'), osp.join(wdir, 'baselines.json')
    runner.run('tools/analysis_tools/score_samples.py', sample_dir, '--config', config,
               *train_args, *fid_args, '--json', score_json)
    scores = {} if runner.dry_run else load_json(score_json)
    num = scores.get('num_samples', 32)
    runner.run('tools/analysis_tools/generation_baselines.py', '--config', config,
               *train_args, *fid_args, '--num-samples', num, '--json', base_json)
    if runner.dry_run:
        return []
    return generator_rows(recipe, scores, load_json(base_json), base)


def generator_rows(recipe: Recipe, scores: dict, refs: dict, base: dict) -> List[dict]:
    """Table rows of a generator from score_samples.py's JSON (``scores``) and
    generation_baselines.py's (``refs``); ``base`` holds the columns shared by the rows."""
    rts = refs.get('random_training_scene', {})
    rows = []
    targets = dict(GENERATOR_TARGETS)
    for cond in recipe.conditions:
        targets.update(CONDITION_TARGETS[cond])
    for key, (op, target, label) in targets.items():
        value = scores.get(key)
        if key == 'command_accuracy':
            baseline, bname = refs.get('command_chance'), 'chance'
        elif key in ('layout_miou', 'layout_miou_requested'):
            baseline, bname = scores.get(key + '_random_train'), 'random training scene'
        elif key.startswith('trajectory_'):
            # chance: a random training scene's recovered path vs the requested one
            baseline = rts.get(key)
            bname = 'random training scene (ignores the trajectory)'
            floor = scores.get('val_' + key)
            if floor is not None:  # what perfect trajectory following scores
                label = f'{label}; val windows\' own recovery error {floor:.3f}'
        elif key.startswith('memorisation'):
            baseline, bname = scores.get('val_' + key), 'val windows (a generator that does not copy)'
        else:
            baseline, bname = rts.get(key), 'random training scene'
        if value is None:
            ok, shown = None, label
        elif op == 'ratio_within':
            ok, shown = (1 / target <= value <= target), label
        elif op == 'report':
            ok, shown = None, label
        else:
            ok, shown = passes(value, op, target), label
        rows.append(dict(base, metric=key, value=value, baseline=baseline, baseline_name=bname,
                         target=shown, passed=ok))
    return rows


# score_samples.py JSON key -> (op, target, how the table states it)
GENERATOR_TARGETS = {
    'tv_all': ('<=', 0.05, '<= 0.05'),
    'tv_occupied': ('<=', 0.05, '<= 0.05 (free excluded: the stricter reading)'),
    'change_rate_ratio': ('ratio_within', 1.5, 'within 1.5x of val'),
    'fid_ratio': ('<=', 2.0, '<= 2 (x train-vs-val floor)'),
    'memorisation_miou_mean': ('report', None, 'report (1 = copies)'),
    'memorisation_miou_max': ('report', None, 'report (1 = copies)'),
}
# rows of the conditions a generator recipe takes
CONDITION_TARGETS = {
    'command': {'command_accuracy': ('>=', 0.70, '>= 0.70')},
    'layout': {'layout_miou': ('>=', 0.70, '>= 0.70 (BEV mIoU over the layout classes)'),
               'layout_miou_requested': ('report', None, 'report (the same mean over the '
                                                         'classes the requested layouts hold; '
                                                         'a class only the samples draw is '
                                                         'left out)')},
    'trajectory': {'trajectory_ade': ('report', None, 'report (m; recovered ego path vs '
                                                       'the requested one)'),
                   'trajectory_fde': ('report', None, 'report (m, last frame)'),
                   'trajectory_yaw_error': ('report', None, 'report (rad, last frame)')},
}


# ----------------------------------------------------------------------------- output
def fmt(v, digits: int = 3) -> str:
    if v is None:
        return '-'
    if isinstance(v, bool):
        return 'yes' if v else 'NO'
    if isinstance(v, float):
        return f'{v:.{digits}f}'
    return str(v)


def table(rows: Sequence[dict]) -> str:
    head = ('| method | stage | metric | value | baseline | target | minutes (wall / CPU / '
            'budget) | pass |')
    lines = [head, '|---|---|---|---|---|---|---|---|']
    for r in rows:
        base = fmt(r.get('baseline'))
        if r.get('baseline') is not None and r.get('baseline_name'):
            base += f" ({r['baseline_name']})"
        cpu = '-' if r.get('cpu_minutes') is None else f"{r['cpu_minutes']:.1f}"
        minutes = '-' if r.get('minutes') is None else (
            f"{r['minutes']:.1f} / {cpu} on {r.get('threads', '?')} thr / {r['budget_min']:g}")
        lines.append(f"| {r['method']} | {r['stage']} | {r['metric']} | {fmt(r.get('value'))} "
                     f"| {base} | {r.get('target') or '-'} | {minutes} | "
                     f"{fmt(r.get('passed'))}{' (' + r['note'] + ')' if r.get('note') else ''} |")
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--recipes', nargs='+', default=['all'],
                   help=f"recipe names or 'all': {', '.join(BY_NAME)}")
    p.add_argument('--work-dir', default='work_dirs/learning_benchmark')
    p.add_argument('--threads', type=int, default=2, help='OMP threads of every step')
    p.add_argument('--reuse', action='store_true',
                   help='skip training where the work dir already holds a checkpoint')
    p.add_argument('--config', nargs='+', default=[], metavar='RECIPE=CONFIG',
                   help='replace a recipe config (e.g. a tiny one for a smoke test)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value overrides passed to every training and test step')
    p.add_argument('--json', help='write the rows and commands to this JSON file')
    p.add_argument('--markdown', help='write the table and its commands (docs/learning.md)')
    p.add_argument('--dry-run', action='store_true', help='print the commands only')
    p.add_argument('--collect', nargs='+', metavar='JSON',
                   help='merge the rows of earlier --json outputs into one table (no training)')
    return p.parse_args(argv)


def collect(paths: Sequence[str]) -> Tuple[List[dict], List[str], List[str]]:
    """Rows, commands and steps of earlier ``--json`` outputs, in the order given."""
    rows, commands, steps = [], [], []
    for path in paths:
        data = load_json(path)
        if not isinstance(data, dict) or 'rows' not in data:
            raise BenchmarkError(f'{path}: not a learning_benchmark.py --json output (no "rows")')
        rows += data['rows']
        commands.append(data.get('command', '?'))
        steps += data.get('steps', [])
    return rows, commands, steps


def write_outputs(args, rows: List[dict], commands: List[str], steps: List[str]) -> str:
    text = table(rows)
    print('\n' + text)
    if args.json:
        save_json_atomic(args.json, dict(rows=rows, command=' ; '.join(commands), steps=steps))
    if args.markdown:
        with atomic_path(args.markdown) as tmp, open(tmp, 'w') as f:
            f.write(text + '\n\nCommand' + ('s' if len(commands) > 1 else '') + ':\n\n')
            f.write(''.join(f'    {c}\n' for c in commands))
            f.write('\nSteps:\n\n' + ''.join(f'    {c}\n' for c in steps))
    return text


def main(argv=None):
    args = parse_args(argv)
    if args.collect:
        rows, commands, steps = collect(args.collect)
        write_outputs(args, rows, commands, steps)
        return rows
    names = list(BY_NAME) if args.recipes == ['all'] else args.recipes
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise BenchmarkError(f'unknown recipes {unknown}; expected {list(BY_NAME)} or all')
    configs = {}
    for item in args.config:
        name, sep, path = item.partition('=')
        if not sep or name not in BY_NAME:
            raise BenchmarkError(f'--config {item!r}: expected RECIPE=CONFIG with RECIPE in '
                                 f'{list(BY_NAME)}')
        configs[name] = path
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    runner = Runner(work_dir, args.threads, args.dry_run)
    ckpts: Dict[str, str] = {}
    rows: List[dict] = []
    t0 = time.time()
    for name in names:
        rows += run_recipe(BY_NAME[name], runner, ckpts, args.reuse, args.cfg_options, configs)
    command = ' '.join(shlex.quote(a) for a in
                       ['python', 'tools/analysis_tools/learning_benchmark.py']
                       + (sys.argv[1:] if argv is None else list(map(str, argv))))
    write_outputs(args, rows, [command], runner.commands)
    print(f'\nlearning benchmark: {len(rows)} rows in {(time.time() - t0) / 60:.1f} min')
    return rows


if __name__ == '__main__':
    main()
