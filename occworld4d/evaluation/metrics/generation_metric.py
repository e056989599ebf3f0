"""``GenerationMetric``: FID / KID / precision-recall / IS / TC of generated occupancy."""
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.runner import load_checkpoint

from occworld4d.registry import METRICS, MODELS
from occworld4d.utils import save_npz_atomic

from occworld4d.utils.compat import resolve_checkpoint
from ..feature_extractor import VersionMismatchError
from ..functional import fid, inception_score, kid, precision_recall, temporal_consistency
from .occupancy_metric import _field

ALL_METRICS = ('fid', 'kid', 'pr', 'is', 'tc')


def save_reference_features(path: str, frame_feats: np.ndarray, probs: np.ndarray,
                            version: str) -> None:
    """Write reference features (N, T, D) and command probabilities (N, C) with their version."""
    save_npz_atomic(path, frame_feats=np.asarray(frame_feats, np.float32),
                    probs=np.asarray(probs, np.float32), version=np.array(version))


def load_reference_features(path: str, version: str) -> Dict[str, np.ndarray]:
    """Read a reference npz; raise :class:`VersionMismatchError` if its version differs."""
    with np.load(path) as data:
        missing = {'frame_feats', 'probs', 'version'} - set(data.files)
        if missing:
            raise KeyError(f'reference features {path!r} lack keys {sorted(missing)}; write '
                           'them with GenerationMetric(save_reference=...)')
        found = str(data['version'])
        if found != version:
            raise VersionMismatchError(
                f'reference features {path!r} were extracted by extractor version {found!r}, '
                f'the metric uses {version!r}: numbers across versions are not comparable')
        return dict(frame_feats=data['frame_feats'], probs=data['probs'])


def window_id(sample) -> Optional[str]:
    """A stable name of a sample's window, from its metainfo: ``scene:first-last/T``.

    None when the sample carries no ``scene`` / ``frame_ids`` (then nothing is cached).
    """
    scene, frames = _field(sample, 'scene'), _field(sample, 'frame_ids')
    if scene is None or not frames:
        return None
    vox = _field(sample, 'pred_semantics')
    vox = _field(sample, 'gt_semantics') if vox is None else vox
    # T of the scored window (a generator may score the last T of T + s loaded frames)
    T = vox.shape[0] if vox is not None and getattr(vox, 'ndim', 0) == 4 else len(frames)
    return f'{scene}:{frames[0]}-{frames[-1]}/{T}'


def load_reference_cache(path: str, version: str) -> Dict[str, Dict[str, np.ndarray]]:
    """{window id: dict(frame_feats=(T, D), probs=(C,))} from a cache written by
    :func:`save_reference_cache`; {} if the file does not exist. A cache of another
    extractor version raises :class:`VersionMismatchError`."""
    if not osp.isfile(path):
        return {}
    with np.load(path) as data:
        missing = {'ids', 'frame_feats', 'probs', 'version'} - set(data.files)
        if missing:
            raise KeyError(f'reference cache {path!r} lacks keys {sorted(missing)}; it was not '
                           'written by GenerationMetric(reference_cache=...): delete it')
        found = str(data['version'])
        if found != version:
            raise VersionMismatchError(
                f'reference cache {path!r} holds features of extractor version {found!r}, the '
                f'metric uses {version!r}: put "{{version}}" in reference_cache or delete it')
        ids, feats, probs = data['ids'], data['frame_feats'], data['probs']
        return {str(i): dict(frame_feats=f, probs=p) for i, f, p in zip(ids, feats, probs)}


def save_reference_cache(path: str, cache: Dict[str, Dict[str, np.ndarray]],
                         version: str) -> None:
    """Write {window id: features} atomically (windows of one length T)."""
    ids = sorted(cache)
    lengths = sorted({cache[i]['frame_feats'].shape[0] for i in ids})
    if len(lengths) > 1:
        raise ValueError(f'reference cache {path!r} would mix windows of {lengths} frames; '
                         'use one reference_cache path per window length / split')
    save_npz_atomic(path, ids=np.array(ids),
                    frame_feats=np.stack([cache[i]['frame_feats'] for i in ids]).astype(
                        np.float32),
                    probs=np.stack([cache[i]['probs'] for i in ids]).astype(np.float32),
                    version=np.array(version))


def extractor_config(extractor: Union[str, dict]) -> dict:
    """The extractor's model dict: given as is, or read from an extractor config file."""
    if isinstance(extractor, str):
        if not osp.isfile(extractor):
            raise FileNotFoundError(f'GenerationMetric: extractor config {extractor!r} does not '
                                    'exist (expected a configs/evaluation/feature_extractor_*.py '
                                    'file, relative to the working directory, or a model dict)')
        model = Config.fromfile(extractor).get('model')
        if not isinstance(model, dict) or 'type' not in model:
            raise KeyError(f'GenerationMetric: extractor config {extractor!r} has no model dict')
        return model.to_dict() if hasattr(model, 'to_dict') else dict(model)
    return extractor


@METRICS.register_module()
class GenerationMetric(BaseMetric):
    """Compare generated samples with reference samples in a trained extractor's feature space.

    ``process`` extracts per-frame features (T, D) and command probabilities of every
    ``pred_semantics`` (generated, "fake") and, unless a reference file is given, of every
    ``gt_semantics`` (real). Only these small vectors are kept, then gathered across ranks.

    Reported keys (under the prefix ``gen<2d|3d>@<version>`` by default, so numbers of
    different extractors never share a key): ``FID``, ``KID`` / ``KID_std``,
    ``precision`` / ``recall``, ``IS`` / ``IS_std``, ``TC`` (fake) and ``TC_real``.
    FID, KID and P/R use per-frame features (N * T vectors), IS the command classifier of
    each window, TC the cosine similarity of consecutive frame features.

    Reference features of the evaluated split are computed once: with ``reference_cache``
    every window's features are stored under its window id (:func:`window_id`, from the
    sample's scene and frame ids) in an npz; later runs extract only windows missing there
    (a test run on a subset adds to the cache; the reference of a run is always exactly
    the ground truth of the windows it evaluated).

    Args:
        extractor: config of an ``OccFeatureExtractor2D`` / ``3D`` (the one it was trained
            with), or the path of its config file (``configs/evaluation/...``).
        checkpoint: its checkpoint; the version stored there must equal the config's.
            ``None`` only with ``allow_untrained=True`` (tests).
        reference: optional npz of reference features (:func:`save_reference_features`);
            otherwise ``gt_semantics`` of the evaluated samples are the reference.
        save_reference: optional path: write the reference features seen during evaluation.
        reference_cache: optional npz path of per-window reference features (see above);
            ``{version}`` in it is replaced by the extractor version.
        expected_version: optional version string that the extractor must have.
        statistics: subset of ('fid', 'kid', 'pr', 'is', 'tc') to compute (not named
            ``metrics``: in a config, mmengine reads a ``metrics`` key as an Evaluator).
        kid_subsets, kid_subset_size, pr_k, is_splits: parameters of the statistics.
        device: where the extractor runs (default: the current CUDA device if any, else CPU).
        allow_untrained: accept ``checkpoint=None`` (random weights; tests only).
    """

    default_prefix = None

    def __init__(self, extractor: Union[str, dict], checkpoint: Optional[str] = None,
                 reference: Optional[str] = None, save_reference: Optional[str] = None,
                 reference_cache: Optional[str] = None,
                 expected_version: Optional[str] = None,
                 statistics: Sequence[str] = ALL_METRICS,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, pr_k: int = 3,
                 is_splits: int = 10, device: Optional[str] = None, allow_untrained: bool = False,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        unknown = set(statistics) - set(ALL_METRICS)
        if unknown:
            raise ValueError(f'GenerationMetric: unknown statistics {sorted(unknown)}; expected '
                             f'a subset of {ALL_METRICS}')
        if extractor is None:
            raise ValueError('GenerationMetric: no extractor given (set test_evaluator.extractor '
                             'to a configs/evaluation/feature_extractor_*.py path or a model '
                             'dict)')
        extractor = extractor_config(extractor)
        model = MODELS.build(extractor) if isinstance(extractor, dict) else extractor
        if checkpoint is not None:
            try:  # a work dir stands for its latest checkpoint (logged)
                checkpoint = resolve_checkpoint(checkpoint)
            except FileNotFoundError as err:
                raise FileNotFoundError(f'GenerationMetric: extractor {err.args[0]}') from err
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
            if model.loaded_version != model.version:
                raise VersionMismatchError(
                    f'GenerationMetric: checkpoint {checkpoint!r} carries no extractor version '
                    f'(expected {model.version!r}); it was not written by an occworld4d '
                    'feature extractor')
        elif not allow_untrained:
            raise ValueError('GenerationMetric needs the extractor checkpoint: train one with '
                             'tools/train.py configs/evaluation/feature_extractor_*.py and pass '
                             'it, e.g. --cfg-options test_evaluator.checkpoint=PATH')
        if expected_version is not None and expected_version != model.version:
            raise VersionMismatchError(f'GenerationMetric: extractor version {model.version!r} '
                                       f'!= expected_version {expected_version!r}')
        device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        self.extractor = model.to(device).eval()
        self.version = model.version
        self.device = device
        kind = '3d' if '3D' in type(model).__name__ else '2d'
        super().__init__(collect_device=collect_device,
                         prefix=prefix or f'gen{kind}@{self.version}')
        self.reference = (load_reference_features(reference, self.version)
                          if reference else None)
        self.save_reference = save_reference
        self.reference_cache = (reference_cache.replace('{version}', self.version)
                                if reference_cache else None)
        if self.reference is not None and self.reference_cache:
            raise ValueError('GenerationMetric: give reference or reference_cache, not both')
        self._cache = (load_reference_cache(self.reference_cache, self.version)
                       if self.reference_cache else {})
        self.metrics = tuple(statistics)
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.pr_k, self.is_splits = pr_k, is_splits

    def _extract(self, value) -> Dict[str, np.ndarray]:
        vox = torch.as_tensor(value).to(self.device)
        if vox.ndim == 3:
            vox = vox[None]  # one frame -> (1, X, Y, Z)
        out = self.extractor.extract(vox[None])  # (1, T, X, Y, Z)
        return {k: v[0].float().cpu().numpy() for k, v in out.items()}

    def process(self, data_batch, data_samples: Sequence) -> None:
        for i, sample in enumerate(data_samples):
            pred = _field(sample, 'pred_semantics')
            if pred is None:
                raise KeyError(f'GenerationMetric: data sample {i} has no pred_semantics')
            res = {'fake_' + k: v for k, v in self._extract(pred).items()}
            wid = window_id(sample) if self.reference_cache else None
            if wid is not None:
                res['window_id'] = wid
            if wid is not None and wid in self._cache:
                res.update({'real_' + k: v for k, v in self._cache[wid].items()})
            elif self.reference is None:
                gt = _field(sample, 'gt_semantics')
                if gt is None:
                    raise KeyError(f'GenerationMetric: data sample {i} has no gt_semantics '
                                   'and no reference feature file was given')
                res.update({'real_' + k: v for k, v in self._extract(gt).items()})
            self.results.append(res)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('GenerationMetric: no samples were processed (the test dataloader '
                             'yielded nothing, or every batch was empty); check the dataset '
                             'split and its size')
        for side in ('fake', 'real'):
            lengths = sorted({r[f'{side}_frame_feats'].shape[0] for r in results
                              if f'{side}_frame_feats' in r})
            if len(lengths) > 1:
                raise ValueError(f'GenerationMetric: the {side} windows have different frame '
                                 f'counts {lengths}; evaluate windows of one length T')
        fake = np.stack([r['fake_frame_feats'] for r in results])  # (N, T, D)
        fake_p = np.stack([r['fake_probs'] for r in results])  # (N, C)
        if self.reference is not None:
            real, real_p = self.reference['frame_feats'], self.reference['probs']
        else:
            real = np.stack([r['real_frame_feats'] for r in results])
            real_p = np.stack([r['real_probs'] for r in results])
            if self.save_reference:
                save_reference_features(self.save_reference, real, real_p, self.version)
            new = {r['window_id']: dict(frame_feats=r['real_frame_feats'], probs=r['real_probs'])
                   for r in results if 'window_id' in r and r['window_id'] not in self._cache}
            if self.reference_cache and new:
                self._cache.update(new)
                save_reference_cache(self.reference_cache, self._cache, self.version)
                print_log(f'GenerationMetric: {len(new)} reference windows added to '
                          f'{self.reference_cache} ({len(self._cache)} cached)',
                          logger=MMLogger.get_current_instance())
        if real.shape[-1] != fake.shape[-1]:
            raise ValueError(f'GenerationMetric: reference feature dim {real.shape[-1]} != '
                             f'{fake.shape[-1]}')
        f2, r2 = fake.reshape(-1, fake.shape[-1]), real.reshape(-1, real.shape[-1])  # (N*T, D)
        out: Dict[str, float] = {}
        logger = MMLogger.get_current_instance()

        def guarded(name, fn):
            try:
                return fn()
            except ValueError as err:  # too few samples for this statistic
                print_log(f'GenerationMetric: {name} skipped: {err}', logger=logger)
                return None

        if 'fid' in self.metrics:
            val = guarded('FID', lambda: fid(r2, f2))
            out['FID'] = math.nan if val is None else val
        if 'kid' in self.metrics:
            val = guarded('KID', lambda: kid(r2, f2, self.kid_subsets, self.kid_subset_size))
            out['KID'], out['KID_std'] = (math.nan, math.nan) if val is None else val
        if 'pr' in self.metrics:
            val = guarded('precision/recall', lambda: precision_recall(r2, f2, self.pr_k))
            out['precision'], out['recall'] = (math.nan, math.nan) if val is None else val
        if 'is' in self.metrics:
            val = guarded('IS', lambda: inception_score(
                fake_p / fake_p.sum(1, keepdims=True), min(self.is_splits, len(fake_p))))
            out['IS'], out['IS_std'] = (math.nan, math.nan) if val is None else val
        if 'tc' in self.metrics:
            val = guarded('TC', lambda: temporal_consistency(fake))
            out['TC'] = math.nan if val is None else val
            val = guarded('TC_real', lambda: temporal_consistency(real))
            out['TC_real'] = math.nan if val is None else val
        print_log(f'GenerationMetric (extractor {type(self.extractor).__name__} version '
                  f'{self.version}, {len(fake)} generated / {len(real)} reference windows): '
                  + ', '.join(f'{k}={v:.4g}' for k, v in out.items()), logger=logger)
        return out
