"""``GenerationMetric``: FID / KID / precision-recall / IS / TC of generated occupancy."""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.runner import load_checkpoint

from occworld4d.registry import METRICS, MODELS
from occworld4d.utils import save_npz_atomic

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

    Args:
        extractor: config of an ``OccFeatureExtractor2D`` / ``3D`` (the one it was trained with).
        checkpoint: its checkpoint; the version stored there must equal the config's.
            ``None`` only with ``allow_untrained=True`` (tests).
        reference: optional npz of reference features (:func:`save_reference_features`);
            otherwise ``gt_semantics`` of the evaluated samples are the reference.
        save_reference: optional path: write the reference features seen during evaluation.
        expected_version: optional version string that the extractor must have.
        metrics: subset of ('fid', 'kid', 'pr', 'is', 'tc').
        kid_subsets, kid_subset_size, pr_k, is_splits: parameters of the statistics.
        device: where the extractor runs (default: the current CUDA device if any, else CPU).
        allow_untrained: accept ``checkpoint=None`` (random weights; tests only).
    """

    default_prefix = None

    def __init__(self, extractor: dict, checkpoint: Optional[str] = None,
                 reference: Optional[str] = None, save_reference: Optional[str] = None,
                 expected_version: Optional[str] = None, metrics: Sequence[str] = ALL_METRICS,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, pr_k: int = 3,
                 is_splits: int = 10, device: Optional[str] = None, allow_untrained: bool = False,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        unknown = set(metrics) - set(ALL_METRICS)
        if unknown:
            raise ValueError(f'GenerationMetric: unknown metrics {sorted(unknown)}; expected '
                             f'a subset of {ALL_METRICS}')
        model = MODELS.build(extractor) if isinstance(extractor, dict) else extractor
        if checkpoint is not None:
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
            if model.loaded_version != model.version:
                raise VersionMismatchError(
                    f'GenerationMetric: checkpoint {checkpoint!r} carries no extractor version '
                    f'(expected {model.version!r}); it was not written by an occworld4d '
                    'feature extractor')
        elif not allow_untrained:
            raise ValueError('GenerationMetric needs the extractor checkpoint (train one with '
                             'configs/evaluation/feature_extractor_*.py)')
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
        self.metrics = tuple(metrics)
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
            if self.reference is None:
                gt = _field(sample, 'gt_semantics')
                if gt is None:
                    raise KeyError(f'GenerationMetric: data sample {i} has no gt_semantics '
                                   'and no reference feature file was given')
                res.update({'real_' + k: v for k, v in self._extract(gt).items()})
            self.results.append(res)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
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
