"""Score generated scenes against a dataset split: the core of ``score_samples.py`` and
``generation_baselines.py`` (``tools/analysis_tools/``).

:func:`load_samples` (in :mod:`.sample_files`, importable from here) reads sample npz files
(``semantics`` (T, X, Y, Z), as ``tools/sample.py`` and ``SaveOccSamplesHook`` write them),
:func:`split_windows` reads the windows of a config's split, :func:`score_scenes` computes
the statistics of :mod:`occworld4d.evaluation.functional.scene_stats` (and FID with a trained
extractor) of a set of scenes next to the split's, and :func:`format_table` prints them. The result keys
are documented in ``docs/evaluation.md`` ("Scene statistics") and kept stable: the learning
benchmark and ``make demo`` read them.
"""
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.registry import init_default_scope

from occworld4d.apis.cli import CLIError, load_config
from occworld4d.registry import DATASETS
from occworld4d.rendering.bev_layout import LAYOUT_CHANNELS
from occworld4d.structures.vocabularies import COMMANDS, get_vocabulary
from .functional import fid as fid_fn
from .functional.scene_stats import (bev_layouts, change_rate, class_frequencies,
                                     frame_change_rates, layout_agreement, memorisation,
                                     recover_commands, total_variation)
from .metrics.generation_metric import GenerationMetric
from .sample_files import (COMMAND_ALIASES, SampleFileError, load_sample_layouts,  # noqa: F401
                           load_samples, parse_command, sample_files)  # (re-exported)

CHANCE_COMMAND_ACCURACY = 1.0 / len(COMMANDS)
# Frame rate assumed for command recovery when neither the split nor the user gives one
# (CarlaSC, Occ3D-Waymo; Occ3D-nuScenes keyframes are 2 Hz: pass frame_rate=2).
DEFAULT_FRAME_RATE = 10.0


def rebase_trajectory(traj: np.ndarray, start: int) -> np.ndarray:
    """Rows (dx, dy, yaw) relative to frame 0 -> relative to frame ``start``, for the frames
    from ``start`` on: (T, 3) -> (T - start, 3)."""
    traj = np.asarray(traj, np.float64)
    d = traj[start:, :2] - traj[start, :2]  # (T', 2) in frame 0's axes
    c, s = np.cos(traj[start, 2]), np.sin(traj[start, 2])
    x, y = c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]  # rotated by -yaw_start
    return np.stack([x, y, traj[start:, 2] - traj[start, 2]], 1)


def trajectory_errors(recovered: np.ndarray, requested: np.ndarray) -> Dict[str, float]:
    """How far a recovered trajectory is from the requested one, both (T, 3) rows (dx, dy,
    yaw) relative to frame 0: ``ade`` mean xy distance over frames (m), ``fde`` at the last
    frame (m), ``yaw_error`` |heading difference| at the last frame (rad, wrapped)."""
    d = np.hypot(*(np.asarray(recovered)[:, :2] - np.asarray(requested)[:, :2]).T)  # (T,)
    dyaw = (recovered[-1, 2] - requested[-1, 2] + np.pi) % (2 * np.pi) - np.pi
    return dict(ade=float(d.mean()), fde=float(d[-1]), yaw_error=float(abs(dyaw)))


# ----------------------------------------------------------------------------- splits
def _dataset(cfg, split: str):
    loader = cfg.get(f'{split}_dataloader')
    if not loader or not loader.get('dataset'):
        raise ValueError(f'the config has no {split}_dataloader.dataset')
    return DATASETS.build(loader['dataset'])


def split_windows(cfg, split: str, max_windows: Optional[int] = None,
                  num_frames: Optional[int] = None, seed: int = 0,
                  shuffle: bool = False) -> Dict:
    """The ground-truth windows of ``{split}_dataloader.dataset`` of a config.

    Args:
        cfg: mmengine Config (a dataset, tokenizer or generator config).
        split: 'train' | 'val' | 'test'.
        max_windows: at most this many windows: evenly spaced over the split, or a random
            subset (``shuffle``, numpy ``seed``).
        num_frames: keep the last T frames of longer windows (a generator scores the last T
            of the T + s frames it loads); shorter windows are an error.

    Returns:
        dict: ``semantics`` uint8 (N, T, X, Y, Z), ``commands`` int64 (N,) (the windows' own
        commands), ``trajectories`` float64 (N, T, 3) (their ego trajectories, relative to
        the first kept frame), ``indices`` (N,), ``vocabulary`` name, ``free_label``, ``pc_range``
        (6,), ``frame_rate`` (Hz or None), ``num_windows`` (the split's size), ``layouts``
        float32 (N, T, h, w) (the pipeline's ``layout`` condition, e.g. UniSceneLayout's;
        None when the windows carry none).
    """
    ds = _dataset(cfg, split)
    n = len(ds)
    if n == 0:
        raise ValueError(f'{split} split of the config is empty')
    if max_windows is None or max_windows >= n:
        idx = np.arange(n)
    elif shuffle:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_windows, replace=False))
    else:
        idx = np.unique(np.linspace(0, n - 1, max_windows).round().astype(np.int64))
    sems, cmds, trajs, meta, lays = [], [], [], {}, []
    for i in idx:
        item = ds[int(i)]
        inputs = item.get('inputs', {}) if isinstance(item, dict) else {}
        vox = inputs.get('voxels') if isinstance(inputs, dict) else None
        if vox is None:
            raise ValueError(f'{split} split ({type(ds).__name__}) yields no inputs["voxels"] '
                             '(a latent cache?); give a config whose split loads semantic '
                             'voxels (e.g. the tokenizer config)')
        vox = np.asarray(vox.numpy() if isinstance(vox, torch.Tensor) else vox)
        traj = inputs.get('trajectory')
        traj = (np.zeros((vox.shape[0], 3)) if traj is None else np.asarray(
            traj.numpy() if isinstance(traj, torch.Tensor) else traj, np.float64))
        if num_frames is not None:
            if vox.shape[0] < num_frames:
                raise ValueError(f'{split} window {int(i)} has {vox.shape[0]} frames, the '
                                 f'samples {num_frames}')
            traj = rebase_trajectory(traj, vox.shape[0] - num_frames)
            vox = vox[-num_frames:]
        sems.append(vox.astype(np.uint8))
        trajs.append(traj)
        lay = inputs.get('layout')  # the pipeline's condition (UniSceneLayout), if any
        lays.append(None if lay is None else np.asarray(
            lay.numpy() if isinstance(lay, torch.Tensor) else lay, np.float32))
        if lays[-1] is not None and num_frames is not None:
            lays[-1] = lays[-1][-num_frames:]
        cmd = inputs.get('command')
        cmds.append(-1 if cmd is None else int(cmd))
        if not meta:
            sample = item.get('data_samples')
            meta = dict(getattr(sample, 'metainfo', {}) or {})
    vocab_name = meta.get('vocabulary') or ds.metainfo.get('vocabulary')
    if vocab_name is None:
        raise ValueError(f'{split} split: its samples carry no "vocabulary" meta key')
    pc_range = meta.get('pc_range') or ds.metainfo.get('pc_range')
    frame_rate = getattr(ds, 'frame_rate', None)  # the synthetic city's; else the user's
    vocab = get_vocabulary(vocab_name)
    return dict(semantics=np.stack(sems), commands=np.array(cmds, np.int64),
                trajectories=np.stack(trajs), indices=idx,
                vocabulary=vocab_name,
                free_label=int(meta.get('free_label', vocab.free_label)),
                pc_range=None if pc_range is None else [float(v) for v in pc_range],
                frame_rate=None if frame_rate is None else float(frame_rate),
                num_windows=n,
                layouts=(np.stack(lays) if lays and all(x is not None for x in lays)
                         and len({x.shape for x in lays}) == 1 else None))


# ----------------------------------------------------------------------------- extractor
class FIDScorer:
    """Per-frame features of a trained extractor and the FID between two sets of scenes.

    Loading (config + checkpoint, version checks) is ``GenerationMetric``'s.
    """

    def __init__(self, extractor: str, checkpoint: str, batch_size: int = 8):
        metric = GenerationMetric(extractor=extractor, checkpoint=checkpoint,
                                  statistics=('fid', ), device='cpu')
        self.extractor, self.version = metric.extractor, metric.version
        self.prefix = metric.prefix
        self.batch_size = batch_size
        self._cached = (None, None)  # (array, features) of the last reference set

    def window_features(self, scenes: np.ndarray) -> np.ndarray:
        """(N, T, X, Y, Z) -> float64 (N, T, D) per-frame features."""
        out = []
        for i in range(0, len(scenes), self.batch_size):
            vox = torch.from_numpy(np.ascontiguousarray(scenes[i:i + self.batch_size]))
            out.append(self.extractor.extract(vox.long())['frame_feats'].double().numpy())
        return np.concatenate(out)  # (N, T, D)

    def features(self, scenes: np.ndarray) -> np.ndarray:
        """(N, T, X, Y, Z) -> float64 (N * T, D) per-frame features (those of the last
        reference set are kept)."""
        if self._cached[0] is scenes:
            return self._cached[1]
        feats = self.window_features(scenes)
        return feats.reshape(-1, feats.shape[-1])  # (N * T, D)

    def fid(self, a: np.ndarray, b: np.ndarray) -> float:
        """FID of scenes ``a`` against reference scenes ``b`` (features of ``b`` kept for
        the next call with the same array)."""
        ref = self.features(b)
        self._cached = (b, ref)
        return float(fid_fn(ref, self.features(a)))

    def fid_floor(self, pool: np.ndarray, ref: np.ndarray, num: int, draws: int = 5,
                  seed: int = 0) -> Dict:
        """Train-vs-val floor: FID of ``draws`` random subsets of ``num`` windows of
        ``pool`` (training windows) against ``ref``; one FID at small N varies with the
        draw (2.0-5.2 over three draws of 32 tiny windows), hence the mean.

        Returns:
            dict(mean, std, values) of the FIDs.
        """
        g = np.random.default_rng(seed)
        subsets = [np.sort(g.choice(len(pool), min(num, len(pool)), replace=False))
                   for _ in range(draws)]
        union = np.unique(np.concatenate(subsets))
        feats = dict(zip(union.tolist(), self.window_features(pool[union])))  # {i: (T, D)}
        refs = self.features(ref)
        self._cached = (ref, refs)
        values = []
        for sub in subsets:
            f = np.concatenate([feats[int(i)] for i in sub])  # (num * T, D)
            values.append(float(fid_fn(refs, f)))
        return dict(mean=float(np.mean(values)), std=float(np.std(values)), values=values)


# ----------------------------------------------------------------------------- scoring
def _f(x) -> Optional[float]:
    x = float(x)
    return None if math.isnan(x) else x


def score_scenes(samples: np.ndarray, val: Dict, train: Optional[np.ndarray] = None,
                 commands: Optional[Sequence[Optional[int]]] = None,
                 trajectories: Optional[Sequence[Optional[np.ndarray]]] = None,
                 fid_scorer: Optional[FIDScorer] = None,
                 fid_floor_pool: Optional[np.ndarray] = None, floor_draws: int = 5,
                 floor_seed: int = 0,
                 val_commands: bool = True, frame_rate: Optional[float] = None,
                 register_kwargs: Optional[dict] = None,
                 cache: Optional[dict] = None,
                 layouts: Optional[Sequence[Optional[np.ndarray]]] = None) -> Dict:
    """Statistics of ``samples`` (M, T, X, Y, Z) next to the val split's.

    Args:
        samples: generated (or baseline) scenes.
        val: :func:`split_windows` of the reference split.
        train: training windows (N, T, X, Y, Z) for memorisation (skipped if None).
        commands: requested command per sample (None entries: unknown).
        trajectories: requested trajectory (T, 3) per sample (None entries: unknown),
            compared with the one recovered from the sample (:func:`trajectory_errors`).
        fid_scorer: FID of samples vs val when given; with ``fid_floor_pool`` (training
            windows) also the train-vs-val floor at the same N: the mean FID of
            ``floor_draws`` random subsets of M windows (:meth:`FIDScorer.fid_floor`).
        val_commands: also recover the val windows' commands (the recovery's accuracy on
            ground truth beside the samples').
        frame_rate: Hz of the frames (search range of the registration); default the
            split's, else 10.
        register_kwargs: other :func:`register_frames` parameters.
        cache: a dict kept between calls with the same ``val`` / ``train`` arrays: the val
            windows' memorisation and command recovery are computed once.
        layouts: requested BEV layout (T, h, w) per sample (UniScene's convention, the
            npz's ``layout``; None entries: unknown): scored by :func:`layout_scores`.

    Returns:
        dict of the keys in ``docs/evaluation.md`` (floats; None where not computed).
    """
    cache = {} if cache is None else cache
    vocab = get_vocabulary(val['vocabulary'])
    K, free = vocab.num_classes, val['free_label']
    vs = val['semantics']
    if samples.shape[1:] != vs.shape[1:]:
        raise ValueError(f'samples of shape {samples.shape[1:]} != val windows '
                         f'{vs.shape[1:]} (T, X, Y, Z)')
    res: Dict = dict(num_samples=int(len(samples)), num_val=int(len(vs)),
                     num_train=None if train is None else int(len(train)),
                     sample_shape=list(samples.shape[1:]), vocabulary=val['vocabulary'],
                     classes=list(vocab.classes), free_label=int(free))
    res.update(_distribution_scores(samples, vs, K, free))
    res.update(_fid_scores(samples, vs, fid_scorer, fid_floor_pool, floor_draws, floor_seed))
    per_sample: List[Dict] = [dict(change_rate=float(c))
                              for c in frame_change_rates(samples).mean(1)]
    res.update(_memorisation_scores(samples, vs, train, K, free, cache, per_sample))
    # command recovery
    if val['pc_range'] is None:
        raise ValueError('the val split carries no pc_range meta key: command recovery needs '
                         'the grid\'s metric range')
    rate = frame_rate or val.get('frame_rate') or DEFAULT_FRAME_RATE
    res['frame_rate'] = float(rate)
    kw = dict(frame_rate=rate, **(register_kwargs or {}))
    rec = recover_commands(samples, vocab.classes, free, val['pc_range'], **kw)
    res.update(_command_scores(rec, commands, per_sample))
    res.update(_trajectory_scores(rec, trajectories, per_sample))
    res.update(val_command_accuracy=None, val_command_confusion=None)
    if val_commands and (val['commands'] >= 0).all():
        res.update(_val_command_scores(val, vocab.classes, kw, cache))
    res.update(layout_scores(samples, val, train, layouts, seed=floor_seed))
    for i, m in enumerate(res.pop('_layout_sample_miou')):
        if m is not None:
            per_sample[i]['layout_miou'] = m
    res['per_sample'] = per_sample
    return res


def _distribution_scores(samples: np.ndarray, vs: np.ndarray, K: int, free: int) -> Dict:
    """Class frequencies (all / occupied), their TV distances and the change rates."""
    f_s, f_v = class_frequencies(samples, K), class_frequencies(vs, K)
    fo_s = class_frequencies(samples, K, free, exclude_free=True)
    fo_v = class_frequencies(vs, K, free, exclude_free=True)
    cr_s, cr_v = change_rate(samples), change_rate(vs)
    return dict(freq_samples=f_s.tolist(), freq_val=f_v.tolist(),
                freq_occupied_samples=fo_s.tolist(), freq_occupied_val=fo_v.tolist(),
                tv_all=total_variation(f_s, f_v),
                tv_occupied=(total_variation(fo_s, fo_v) if fo_s.sum() > 0 else 1.0),
                change_rate_samples=cr_s, change_rate_val=cr_v,
                change_rate_ratio=cr_s / cr_v if cr_v > 0 else None)


def _fid_scores(samples: np.ndarray, vs: np.ndarray, fid_scorer: Optional['FIDScorer'],
                fid_floor_pool: Optional[np.ndarray], floor_draws: int,
                floor_seed: int) -> Dict:
    """FID of the samples against val and the train-vs-val floor (None without a scorer)."""
    res = dict(fid=None, fid_floor=None, fid_floor_std=None, fid_floor_values=None,
               fid_ratio=None, fid_key=None, extractor_version=None)
    if fid_scorer is None:
        return res
    res['fid'] = fid_scorer.fid(samples, vs)
    res['extractor_version'] = fid_scorer.version
    res['fid_key'] = f'{fid_scorer.prefix}/FID'
    if fid_floor_pool is not None:
        fl = fid_scorer.fid_floor(fid_floor_pool, vs, len(samples), floor_draws, floor_seed)
        res.update(fid_floor=fl['mean'], fid_floor_std=fl['std'], fid_floor_values=fl['values'])
        res['fid_ratio'] = res['fid'] / fl['mean'] if fl['mean'] > 0 else None
    return res


def _memorisation_scores(samples: np.ndarray, vs: np.ndarray, train: Optional[np.ndarray],
                         K: int, free: int, cache: dict, per_sample: List[Dict]) -> Dict:
    """Mean / max best IoUs of the samples (and of the val windows, cached) against the
    training windows; each sample's values and nearest training window into ``per_sample``."""
    res = {f'{prefix}_{kind}_{stat}': None for prefix in ('memorisation', 'val_memorisation')
           for kind in ('miou', 'iou') for stat in ('mean', 'max')}
    if train is None:
        return res
    mem = memorisation(samples, train, K, free)
    key = ('val_memorisation', id(vs), id(train))
    if key not in cache:
        cache[key] = memorisation(vs, train, K, free)
    for prefix, m in (('memorisation', mem), ('val_memorisation', cache[key])):
        res[f'{prefix}_miou_mean'] = _f(np.nanmean(m['miou']))
        res[f'{prefix}_miou_max'] = _f(np.nanmax(m['miou']))
        res[f'{prefix}_iou_mean'] = _f(np.nanmean(m['iou']))
        res[f'{prefix}_iou_max'] = _f(np.nanmax(m['iou']))
    for i, p in enumerate(per_sample):
        p.update(memorisation_miou=_f(mem['miou'][i]), memorisation_iou=_f(mem['iou'][i]),
                 nearest_train=int(mem['miou_index'][i]))
    return res


def _command_scores(rec: Dict, commands: Optional[Sequence[Optional[int]]],
                    per_sample: List[Dict]) -> Dict:
    """Accuracy and confusion of the recovered commands against the requested ones; each
    sample's recovered command, yaw and distance into ``per_sample``."""
    commands = list(commands) if commands is not None else [None] * len(per_sample)
    if len(commands) != len(per_sample):
        raise ValueError(f'{len(commands)} requested commands for {len(per_sample)} samples')
    hits, confusion = [], np.zeros((len(COMMANDS), len(COMMANDS)), np.int64)
    for i, p in enumerate(per_sample):
        p.update(recovered_command=COMMANDS[int(rec['command'][i])],
                 recovered_yaw=float(rec['yaw'][i]), recovered_distance=float(rec['distance'][i]),
                 requested_command=None if commands[i] is None else COMMANDS[commands[i]])
        if commands[i] is not None:
            hits.append(int(rec['command'][i]) == commands[i])
            confusion[commands[i], int(rec['command'][i])] += 1
    return dict(command_accuracy=float(np.mean(hits)) if hits else None,
                num_commands=len(hits), command_confusion=confusion.tolist() if hits else None,
                command_chance=CHANCE_COMMAND_ACCURACY)


def _trajectory_scores(rec: Dict, trajectories: Optional[Sequence[Optional[np.ndarray]]],
                       per_sample: List[Dict]) -> Dict:
    """ADE / FDE / final yaw error of the recovered trajectories against the requested ones
    (the val_ keys stay None here); each sample's errors into ``per_sample``."""
    trajectories = (list(trajectories) if trajectories is not None
                    else [None] * len(per_sample))
    errs = []
    for i, p in enumerate(per_sample):
        if trajectories[i] is not None:
            e = trajectory_errors(rec['trajectory'][i], trajectories[i])
            p.update(trajectory_ade=e['ade'], trajectory_fde=e['fde'],
                     trajectory_yaw_error=e['yaw_error'])
            errs.append(e)
    res: Dict = {}
    for k in ('ade', 'fde', 'yaw_error'):
        res[f'trajectory_{k}'] = float(np.mean([e[k] for e in errs])) if errs else None
        res[f'val_trajectory_{k}'] = None
    res['num_trajectories'] = len(errs)
    return res


def _val_command_scores(val: Dict, class_names: Sequence[str], kw: dict, cache: dict) -> Dict:
    """The recovery's accuracy on the val windows' own commands and trajectories (cached)."""
    vs = val['semantics']
    key = ('val_commands', id(vs), repr(sorted(kw.items())))
    if key not in cache:
        cache[key] = recover_commands(vs, class_names, val['free_label'], val['pc_range'], **kw)
    got = cache[key]['command']
    conf = np.zeros((len(COMMANDS), len(COMMANDS)), np.int64)
    np.add.at(conf, (val['commands'], got), 1)
    res = dict(val_command_accuracy=float((got == val['commands']).mean()),
               val_command_confusion=conf.tolist())
    if 'trajectories' in val:
        verr = [trajectory_errors(r, t) for r, t in zip(cache[key]['trajectory'],
                                                          val['trajectories'])]
        for k in ('ade', 'fde', 'yaw_error'):
            res[f'val_trajectory_{k}'] = float(np.mean([e[k] for e in verr]))
    return res


def layout_scores(samples: np.ndarray, val: Dict, train: Optional[np.ndarray] = None,
                  layouts: Optional[Sequence[Optional[np.ndarray]]] = None,
                  seed: int = 0) -> Dict:
    """Agreement of samples with their requested BEV layouts (UniScene's layout condition).

    The sample's own layout is computed from its voxels as ``UniSceneLayout(source=
    'occupancy')`` computes the condition (:func:`bev_layouts`, pooled to the requested
    layout's h x w) and compared with the requested one (:func:`layout_agreement`: IoU of
    every layout class in BEV over all cells, empty excluded).

    Returns:
        dict: ``layout_miou`` and ``layout_iou_<channel>`` (None where the class is in
        neither layout) over the samples that have a layout; ``layout_miou_requested``: the
        mean over the classes present in the requested layouts only (a class that only the
        samples draw is left out; ``layout_miou`` counts it as 0 and is the verdict); ``num_layouts``,
        ``layout_size`` [h, w]; ``val_layout_miou``: the val windows' layouts computed here
        against the layouts their pipeline gave (1.0 when scoring and condition agree;
        None if the split carries no layout); ``layout_miou_random_train``: a random
        training window (numpy ``seed``) for each sample against that sample's requested
        layout (the baseline; ``layout_miou_requested_random_train`` the same for
        ``layout_miou_requested``); ``_layout_sample_miou``: per sample (None: no layout).
    """
    L = len(LAYOUT_CHANNELS) + 1
    M = len(samples)
    layouts = list(layouts) if layouts is not None else [None] * M
    if len(layouts) != M:
        raise ValueError(f'{len(layouts)} requested layouts for {M} samples')
    res: Dict = dict(layout_miou=None, layout_miou_requested=None, num_layouts=0, layout_size=None, val_layout_miou=None,
                     layout_miou_random_train=None, layout_miou_requested_random_train=None)
    res.update({f'layout_iou_{c}': None for c in LAYOUT_CHANNELS})
    res['_layout_sample_miou'] = [None] * M
    have = [i for i, x in enumerate(layouts) if x is not None]
    if not have:
        return res
    req = np.stack([np.asarray(layouts[i], np.float32) for i in have])  # (M', T, h, w)
    T, X, Y = samples.shape[1:4]
    if req.ndim != 4 or req.shape[1] != T or X % req.shape[2] or Y % req.shape[3] \
            or X // req.shape[2] != Y // req.shape[3]:
        raise ValueError(f'requested layouts of shape {req.shape[1:]} do not fit samples of '
                         f'{samples.shape[1:]}: expected (T, h, w) with h, w dividing X, Y '
                         'by one factor')
    h = req.shape[2]
    vocab = val['vocabulary']
    got = layout_agreement(bev_layouts(samples[have], vocab, h), req, L)
    res.update(layout_miou=_f(got['miou']), layout_miou_requested=_f(got['miou_requested']),
               num_layouts=len(have),
               layout_size=[int(req.shape[2]), int(req.shape[3])])
    for c, name in enumerate(LAYOUT_CHANNELS):
        res[f'layout_iou_{name}'] = _f(got['iou'][c + 1])
    for j, i in enumerate(have):
        res['_layout_sample_miou'][i] = _f(got['sample_miou'][j])
    vl = val.get('layouts')
    if vl is not None and vl.shape[1:] == (T, ) + req.shape[2:]:
        res['val_layout_miou'] = _f(layout_agreement(
            bev_layouts(val['semantics'], vocab, h), vl, L)['miou'])
    if train is not None and len(train):
        pick = np.random.default_rng(seed).integers(0, len(train), size=len(have))
        rand = layout_agreement(bev_layouts(train[pick], vocab, h), req, L)
        res['layout_miou_random_train'] = _f(rand['miou'])
        res['layout_miou_requested_random_train'] = _f(rand['miou_requested'])
    return res


# ----------------------------------------------------------------------------- table
def _fmt(v, digits=4) -> str:
    if v is None:
        return '-'
    if isinstance(v, float):
        return f'{v:.{digits}g}' if abs(v) >= 1e-3 or v == 0 else f'{v:.2e}'
    return str(v)


def format_table(res: Dict, title: str = 'samples') -> str:
    """A markdown table (statistic | samples | val | comparison) of :func:`score_scenes`."""
    rows = [('windows', res['num_samples'], res['num_val'], f'shape {res["sample_shape"]}')]
    for c, name in enumerate(res['classes']):
        occ = c != res['free_label']
        rows.append((f'freq {name}',
                     f'{100 * res["freq_samples"][c]:.2f}%', f'{100 * res["freq_val"][c]:.2f}%',
                     (f'{100 * res["freq_occupied_samples"][c]:.2f}% vs '
                      f'{100 * res["freq_occupied_val"][c]:.2f}% of occupied') if occ else
                     'free space'))
    rows += [
        ('TV (occupied classes)', '', '', _fmt(res['tv_occupied'])),
        ('TV (all classes)', '', '', _fmt(res['tv_all'])),
        ('change rate', f'{100 * res["change_rate_samples"]:.2f}%',
         f'{100 * res["change_rate_val"]:.2f}%', f'ratio {_fmt(res["change_rate_ratio"])}'),
    ]
    if res.get('fid') is not None:
        rows.append(('FID', _fmt(res['fid']), '',
                     f'floor {_fmt(res["fid_floor"])} +- {_fmt(res["fid_floor_std"])} (train '
                     f'vs val, same N, {len(res["fid_floor_values"] or [])} draws), ratio '
                     f'{_fmt(res["fid_ratio"])}'))
    if res.get('memorisation_miou_mean') is not None:
        rows.append(('memorisation mIoU mean / max',
                     f'{_fmt(res["memorisation_miou_mean"])} / '
                     f'{_fmt(res["memorisation_miou_max"])}',
                     f'{_fmt(res["val_memorisation_miou_mean"])} / '
                     f'{_fmt(res["val_memorisation_miou_max"])}',
                     f'best vs {res["num_train"]} training windows (copy = 1)'))
        rows.append(('memorisation IoU mean / max',
                     f'{_fmt(res["memorisation_iou_mean"])} / '
                     f'{_fmt(res["memorisation_iou_max"])}',
                     f'{_fmt(res["val_memorisation_iou_mean"])} / '
                     f'{_fmt(res["val_memorisation_iou_max"])}', 'binary occupancy'))
    rows.append(('command accuracy', _fmt(res['command_accuracy']),
                 _fmt(res['val_command_accuracy']),
                 f'{res["num_commands"]} requested; chance {res["command_chance"]:.2f}; '
                 f'recovered by registering frames at {res["frame_rate"]:g} Hz'))
    if res.get('trajectory_ade') is not None:
        rows.append(('trajectory ADE / FDE (m), final yaw error (rad)',
                     f'{res["trajectory_ade"]:.2f} / {res["trajectory_fde"]:.2f}, '
                     f'{res["trajectory_yaw_error"]:.3f}',
                     '-' if res['val_trajectory_ade'] is None else
                     f'{res["val_trajectory_ade"]:.2f} / {res["val_trajectory_fde"]:.2f}, '
                     f'{res["val_trajectory_yaw_error"]:.3f}',
                     f'{res["num_trajectories"]} requested; recovered vs requested'))
    if res.get('layout_miou') is not None:
        rows.append(('layout agreement mIoU (BEV)', _fmt(res['layout_miou']),
                     _fmt(res['val_layout_miou']),
                     f'{res["num_layouts"]} requested, {res["layout_size"]} cells; random '
                     f'training scene {_fmt(res["layout_miou_random_train"])}'))
    lines = [f'| statistic | {title} | val | comparison |', '|---|---|---|---|']
    lines += [f'| {a} | {b} | {c} | {d} |' for a, b, c, d in rows]
    return '\n'.join(lines)



def scoring_configs(args) -> Tuple[object, object, str]:
    """The CLI set-up shared by ``score_samples.py`` and ``generation_baselines.py``.

    Sets the torch threads from OMP_NUM_THREADS, checks that FID gets both an extractor config
    and checkpoint, loads ``--config`` (and ``--train-config``, default the same) with
    ``--cfg-options``, enters the config's default scope and resolves ``--val-split auto``.

    Returns:
        (config, training config, split name 'val' | 'test').
    """
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1') or 1))
    if bool(args.extractor) != bool(args.extractor_ckpt):
        raise CLIError('FID needs both --extractor CONFIG and --extractor-ckpt CHECKPOINT')
    cfg = load_config(args.config, args.cfg_options)
    train_cfg = (load_config(args.train_config, args.cfg_options) if args.train_config
                 else cfg)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    split = args.val_split
    if split == 'auto':
        split = 'val' if (cfg.get('val_dataloader') or {}).get('dataset') else 'test'
    return cfg, train_cfg, split
