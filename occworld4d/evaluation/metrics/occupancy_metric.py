"""``OccupancyMetric``: reconstruction / forecasting IoU and mIoU under a named convention."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from occworld4d.registry import METRICS
from occworld4d.structures import get_vocabulary

from ..functional.iou import CONVENTIONS, confusion_per_step, iou_from_confusion

MASK_KEYS = (None, 'mask_camera', 'mask_lidar', 'mask_infov', 'valid_mask')


def _field(sample, key: str):
    """Field of a data sample (dict after the Evaluator's ``to_dict`` or an OccDataSample)."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key) if key in sample else None


@METRICS.register_module()
class OccupancyMetric(BaseMetric):
    """IoU / mIoU of ``pred_semantics`` against ``gt_semantics`` (both (T, X, Y, Z)).

    ``process`` keeps one int64 confusion matrix per time step and batch (T, K, K), never
    voxels, so results are small to gather across ranks and exact for any batch size.

    Result keys carry the convention (and the mask) as a tag ``<convention>[@<mask>]``:
    ``<tag>/mIoU``, ``<tag>/IoU`` (binary, occupied vs free), ``<tag>/IoU_<class>``;
    with ``per_frame=True`` also ``<tag>/mIoU_t<k>`` and ``<tag>/IoU_t<k>`` for every
    frame k = 1..T; with ``horizons=(2, 4, 6)`` ``<tag>/mIoU_<h>`` / ``<tag>/IoU_<h>``
    for frame h (1-based) and ``<tag>/mIoU_avg`` / ``<tag>/IoU_avg`` = their mean.

    How time aggregates:
      * ``occworld``: IoU is computed per frame from that frame's matrix summed over the
        whole set (absent classes score 1 per frame); ``mIoU`` / ``IoU`` = mean over all
        frames of the per-frame values; ``_avg`` = mean over the horizons.
      * ``dynamiccity`` / ``ssc``: ``mIoU`` / ``IoU`` come from the matrix summed over all
        frames and samples (every voxel of the 4D window counts once); per-frame and
        horizon values use that frame's matrix; ``_avg`` = mean over the horizons.

    Args:
        convention: 'dynamiccity' | 'occworld' | 'ssc'.
        num_classes: K (free included). Defaults to the vocabulary's size.
        free_label: id of free space. Defaults to the vocabulary's.
        class_names: names of the K classes. Defaults to the vocabulary's.
        vocabulary: a vocabulary name providing the three defaults above.
        mask_key: None or a boolean mask field of the samples ('mask_camera',
            'mask_lidar', 'mask_infov', 'valid_mask'); False voxels are not scored.
        per_frame: also report every frame.
        horizons: 1-based frame indices to report (forecasting steps), plus their mean.
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix = None

    def __init__(self, convention: str = 'dynamiccity', num_classes: Optional[int] = None,
                 free_label: Optional[int] = None, class_names: Optional[Sequence[str]] = None,
                 vocabulary: Optional[str] = None, mask_key: Optional[str] = None,
                 per_frame: bool = False, horizons: Optional[Sequence[int]] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if convention not in CONVENTIONS:
            raise ValueError(f'OccupancyMetric: unknown convention {convention!r}; expected one '
                             f'of {CONVENTIONS}')
        if mask_key not in MASK_KEYS:
            raise ValueError(f'OccupancyMetric: mask_key {mask_key!r} not in {MASK_KEYS}')
        if vocabulary is not None:
            voc = get_vocabulary(vocabulary)
            num_classes = voc.num_classes if num_classes is None else num_classes
            free_label = voc.free_label if free_label is None else free_label
            class_names = voc.classes if class_names is None else class_names
        if num_classes is None or free_label is None:
            raise ValueError('OccupancyMetric needs num_classes and free_label (or a '
                             'vocabulary name)')
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            f'class{i}' for i in range(num_classes))
        if len(self.class_names) != num_classes:
            raise ValueError(f'OccupancyMetric: {len(self.class_names)} class_names for '
                             f'num_classes={num_classes}')
        if horizons is not None and (not horizons or min(horizons) < 1):
            raise ValueError(f'OccupancyMetric: horizons are 1-based frame indices, got '
                             f'{horizons}')
        self.convention = convention
        self.num_classes = int(num_classes)
        self.free_label = int(free_label)
        self.mask_key = mask_key
        self.per_frame = per_frame
        self.horizons = tuple(horizons) if horizons is not None else None
        self.tag = convention + (f'@{mask_key}' if mask_key else '')

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Add the per-frame confusion matrices (T, K, K) of one batch to ``self.results``."""
        total = None
        for i, sample in enumerate(data_samples):
            pred, gt = _field(sample, 'pred_semantics'), _field(sample, 'gt_semantics')
            if pred is None or gt is None:
                keys = sorted(sample) if isinstance(sample, dict) else sample.keys()
                raise KeyError(f'OccupancyMetric: data sample {i} lacks '
                               f'{"pred_semantics" if pred is None else "gt_semantics"} '
                               f'(keys: {keys})')
            pred, gt = torch.as_tensor(pred), torch.as_tensor(gt)
            if gt.ndim == 3:  # (X, Y, Z): one frame
                pred, gt = pred[None], gt[None]
            mask = None
            if self.mask_key is not None:
                mask = _field(sample, self.mask_key)
                if mask is None:
                    raise KeyError(f'OccupancyMetric: mask_key={self.mask_key!r} but data '
                                   f'sample {i} has no such field')
                mask = torch.as_tensor(mask).reshape(gt.shape)
            if pred.shape != gt.shape or gt.ndim != 4:
                raise ValueError(f'OccupancyMetric: sample {i} pred_semantics '
                                 f'{tuple(pred.shape)} vs gt_semantics {tuple(gt.shape)}; '
                                 'expected equal (T, X, Y, Z)')
            cm = confusion_per_step(pred, gt, self.num_classes, mask)  # (T, K, K)
            if total is not None and total.shape != cm.shape:
                raise ValueError(f'OccupancyMetric: samples of one batch have different '
                                 f'frame counts ({total.shape[0]} vs {cm.shape[0]})')
            total = cm if total is None else total + cm
        if total is not None:
            self.results.append(total.cpu().numpy())

    def _sum(self, results: List[np.ndarray]) -> np.ndarray:
        shapes = {r.shape for r in results}
        if len(shapes) != 1:
            raise ValueError(f'OccupancyMetric: batches have different frame counts '
                             f'{sorted(s[0] for s in shapes)}; per-frame scoring needs one T')
        return np.sum(np.stack(results), axis=0)  # (T, K, K)

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        """Reduce the collected matrices into the result dict (see class docstring)."""
        if not results:
            raise ValueError(f'OccupancyMetric ({self.tag}): no samples were processed, so '
                             'there is nothing to score; check that the val/test dataloader '
                             'is not empty and that the model returns data samples with '
                             'pred_semantics')
        per_step_needed = self.convention == 'occworld' or self.per_frame or self.horizons
        if per_step_needed:
            cm = self._sum(results)  # (T, K, K)
        else:  # frame counts may differ between batches: sum over time first
            cm = np.sum([r.sum(0) for r in results], axis=0)[None]  # (1, K, K)
        T = cm.shape[0]
        steps = iou_from_confusion(cm, self.convention, self.free_label)  # per frame
        if self.convention == 'occworld':
            class_iou = steps.iou.mean(0)  # (K,): NaN only for free (never scored)
            miou, biou = float(np.mean(steps.miou)), float(np.mean(steps.binary_iou))
        else:
            overall = iou_from_confusion(cm.sum(0), self.convention, self.free_label)
            class_iou, miou, biou = overall.iou, float(overall.miou), float(
                overall.binary_iou)
        t = self.tag
        out = {f'{t}/mIoU': miou, f'{t}/IoU': biou}
        for k, name in enumerate(self.class_names):
            if not np.isnan(class_iou[k]):
                out[f'{t}/IoU_{name}'] = float(class_iou[k])
        if self.per_frame:
            for k in range(T):
                out[f'{t}/mIoU_t{k + 1}'] = float(steps.miou[k])
                out[f'{t}/IoU_t{k + 1}'] = float(steps.binary_iou[k])
        if self.horizons:
            if max(self.horizons) > T:
                raise ValueError(f'OccupancyMetric: horizon {max(self.horizons)} > {T} '
                                 'predicted frames')
            idx = [h - 1 for h in self.horizons]
            for h, k in zip(self.horizons, idx):
                out[f'{t}/mIoU_{h}'] = float(steps.miou[k])
                out[f'{t}/IoU_{h}'] = float(steps.binary_iou[k])
            out[f'{t}/mIoU_avg'] = float(np.mean(steps.miou[idx]))
            out[f'{t}/IoU_avg'] = float(np.mean(steps.binary_iou[idx]))
        self._log_table(class_iou, miou, biou)
        return out

    def _log_table(self, class_iou: np.ndarray, miou: float, biou: float) -> None:
        width = max(len(n) for n in self.class_names) + 2
        lines = [f'OccupancyMetric, convention={self.convention}'
                 + (f', mask={self.mask_key}' if self.mask_key else ', no mask')
                 + f', free={self.class_names[self.free_label]} ({self.free_label})',
                 f'{"class":<{width}}IoU (%)']
        for k, name in enumerate(self.class_names):
            val = '  -' if np.isnan(class_iou[k]) else f'{100 * class_iou[k]:6.2f}'
            lines.append(f'{name:<{width}}{val}')
        lines.append(f'{"mIoU":<{width}}{100 * miou:6.2f}')
        lines.append(f'{"IoU (binary)":<{width}}{100 * biou:6.2f}')
        print_log('\n'.join(lines), logger=MMLogger.get_current_instance())
