"""Confusion matrices and the three named IoU conventions of semantic occupancy.

A confusion matrix ``cm`` is int64 (K, K) with rows = ground truth, columns = prediction,
so ``cm[g, p]`` counts voxels of class g predicted as p. Summing matrices over batches
gives exactly the matrix of the whole set: every convention below is a function of
the summed matrix only (per time step for ``occworld``), hence batch-size independent.

Conventions (see ``docs/evaluation.md``):

``occworld`` (OccWorld, OccSora, UniScene, DOME)
    Scored classes: every class except free ("others" included). Scored per time step
    over the whole set: a class with no ground-truth voxel at that step scores IoU = 1
    (also the binary IoU when the step has no occupied ground truth). No mask by default.
``dynamiccity`` (DynamicCity)
    Scored classes: every class except free. A class with no ground truth is skipped
    (excluded from the mean, reported as NaN). Masked-out voxels (CarlaSC zero point
    count) are removed before counting.
``ssc`` (CarlaSC's semantic scene completion benchmark)
    Like ``dynamiccity`` but free is a scored class.

Binary IoU, for every convention: occupied (label != free) versus free, from the same
matrix: TP / (TP + FP + FN) with "occupied" as the positive class.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

CONVENTIONS = ('occworld', 'dynamiccity', 'ssc')


def _to_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{name} must be a tensor or numpy array, got {type(x).__name__}')
    return x


def _index_dtype(size: int) -> torch.dtype:
    """Smallest integer dtype that holds bin indices < size (int16 is ~10x faster than int64)."""
    if size <= 2 ** 15 - 1:
        return torch.int16
    return torch.int32 if size <= 2 ** 31 - 1 else torch.int64


def _check_range(name: str, v: torch.Tensor, K: int) -> None:
    if v.numel() and (int(v.min()) < 0 or int(v.max()) >= K):
        raise ValueError(f'{name} class ids span [{int(v.min())}, {int(v.max())}], '
                         f'expected [0, {K}) for num_classes={K}')


def _pair_counts(pred: torch.Tensor, gt: torch.Tensor, K: int, mask, ignore_index,
                 ) -> torch.Tensor:
    """Counts of (t, gt, pred) for (T, N) inputs -> int64 (T, K, K)."""
    T = pred.shape[0]
    keep = None
    if mask is not None:
        keep = mask.reshape(T, -1).to(pred.device).bool()
    if ignore_index is not None:
        valid = gt != ignore_index
        keep = valid if keep is None else keep & valid
    try:  # fast path: every voxel in range (cheap on uint8)
        _check_range('pred', pred, K)
        _check_range('gt', gt, K)
    except ValueError:
        if keep is None:
            raise
        _check_range('pred', pred[keep], K)  # out-of-range ids only where not scored
        _check_range('gt', gt[keep], K)
    dt = _index_dtype(T * K * K)
    idx = gt.to(dt) * K + pred.to(dt)  # (T, N) bin of (gt, pred)
    idx += (torch.arange(T, device=pred.device, dtype=dt) * (K * K))[:, None]  # + t * K * K
    idx = idx[keep] if keep is not None else idx.reshape(-1)
    cm = torch.bincount(idx, minlength=T * K * K)  # (T * K * K,)
    return cm.reshape(T, K, K).long()  # (T, K, K)


def confusion_matrix(pred, gt, num_classes: int, mask=None,
                     ignore_index: Optional[int] = None) -> torch.Tensor:
    """Count (gt, pred) pairs over all voxels with one bincount.

    Args:
        pred: predicted class ids, any shape (e.g. (T, X, Y, Z)), integer dtype.
        gt: ground-truth class ids, same shape.
        num_classes: K.
        mask: optional bool, same number of voxels; ``True`` = voxel is counted.
        ignore_index: optional gt label whose voxels are not counted (e.g. 255).

    Returns:
        int64 (K, K) on ``pred``'s device; rows gt, columns pred.

    Raises:
        ValueError: on shape mismatch or counted ids outside [0, K) (naming the range).
    """
    pred, gt = _to_tensor(pred, 'pred'), _to_tensor(gt, 'gt')
    if pred.shape != gt.shape:
        raise ValueError(f'pred shape {tuple(pred.shape)} != gt shape {tuple(gt.shape)}')
    if mask is not None:
        mask = _to_tensor(mask, 'mask')
        if mask.numel() != pred.numel():
            raise ValueError(f'mask has {mask.numel()} voxels, pred has {pred.numel()} '
                             f'(shapes {tuple(mask.shape)} vs {tuple(gt.shape)})')
    pred = pred.reshape(1, -1)  # (1, N)
    gt = gt.reshape(1, -1).to(pred.device)
    return _pair_counts(pred, gt, int(num_classes), mask, ignore_index)[0]  # (K, K)


def confusion_per_step(pred, gt, num_classes: int, mask=None,
                       ignore_index: Optional[int] = None) -> torch.Tensor:
    """One confusion matrix per time step: (T, ...) inputs -> int64 (T, K, K).

    Same arguments as :func:`confusion_matrix`; the leading axis of ``pred`` is time.
    """
    pred, gt = _to_tensor(pred, 'pred'), _to_tensor(gt, 'gt')
    if pred.shape != gt.shape or pred.ndim < 1:
        raise ValueError(f'pred shape {tuple(pred.shape)} != gt shape {tuple(gt.shape)}')
    if mask is not None:
        mask = _to_tensor(mask, 'mask')
        if tuple(mask.shape) != tuple(pred.shape):
            raise ValueError(f'mask shape {tuple(mask.shape)} != pred shape '
                             f'{tuple(pred.shape)}')
    T = pred.shape[0]
    pred = pred.reshape(T, -1)  # (T, N)
    gt = gt.reshape(T, -1).to(pred.device)  # (T, N)
    return _pair_counts(pred, gt, int(num_classes), mask, ignore_index)


@dataclass
class IoUResult:
    """IoU of one convention. Leading dims (...) are those of the confusion matrix minus (K, K).

    Attributes:
        iou: float64 (..., K); NaN for classes the convention does not score (free for
            occworld / dynamiccity, absent classes for dynamiccity / ssc).
        miou: float64 (...): mean of the scored classes (NaN if none).
        binary_iou: float64 (...): occupied vs free.
        convention: name used.
    """
    iou: np.ndarray
    miou: np.ndarray
    binary_iou: np.ndarray
    convention: str


def scored_classes(convention: str, num_classes: int, free_label: int) -> Tuple[int, ...]:
    """Class ids that enter the mean of ``convention``."""
    if convention not in CONVENTIONS:
        raise ValueError(f'unknown IoU convention {convention!r}; expected one of '
                         f'{CONVENTIONS}')
    if convention == 'ssc':
        return tuple(range(num_classes))
    return tuple(c for c in range(num_classes) if c != free_label)


def iou_from_confusion(cm, convention: str, free_label: int) -> IoUResult:
    """IoU per class, mIoU and binary IoU of a confusion matrix under a named convention.

    Args:
        cm: int (..., K, K) confusion matrix (rows gt, cols pred). For ``occworld`` pass
            one matrix per time step (T, K, K): the "absent class scores 1" rule is
            defined per step, so results of a summed-over-time matrix differ.
        convention: 'occworld' | 'dynamiccity' | 'ssc'.
        free_label: id of free space.

    Returns:
        :class:`IoUResult` with leading dims (...).
    """
    cm = _to_tensor(cm, 'cm').detach().cpu().double().numpy()
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f'confusion matrix must be (..., K, K); got {cm.shape}')
    K = cm.shape[-1]
    if not 0 <= free_label < K:
        raise ValueError(f'free_label {free_label} outside [0, {K})')
    scored = np.zeros(K, dtype=bool)
    scored[list(scored_classes(convention, K, free_label))] = True
    tp = np.diagonal(cm, axis1=-2, axis2=-1)  # (..., K)
    gt_count = cm.sum(-1)  # (..., K)
    pred_count = cm.sum(-2)  # (..., K)
    union = gt_count + pred_count - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)  # (..., K)
    absent = gt_count == 0
    if convention == 'occworld':
        iou = np.where(absent, 1.0, iou)
    else:
        iou = np.where(absent, np.nan, iou)
    iou = np.where(scored, iou, np.nan)
    with np.errstate(invalid='ignore'):
        valid = ~np.isnan(iou)
        miou = np.where(valid.any(-1), np.nansum(iou, -1) / np.maximum(valid.sum(-1), 1),
                        np.nan)
    occ = np.ones(K, dtype=bool)
    occ[free_label] = False
    b_tp = cm[..., occ, :][..., :, occ].sum((-2, -1))
    b_fp = cm[..., free_label, :][..., occ].sum(-1)
    b_fn = cm[..., occ, free_label].sum(-1)
    b_union = b_tp + b_fp + b_fn
    with np.errstate(invalid='ignore', divide='ignore'):
        binary = np.where(b_union > 0, b_tp / np.maximum(b_union, 1), np.nan)
    if convention == 'occworld':
        binary = np.where(b_tp + b_fn == 0, 1.0, binary)
    return IoUResult(iou=iou, miou=np.asarray(miou), binary_iou=np.asarray(binary),
                     convention=convention)
