"""How close generated scenes are to copies of training scenes (best IoU against each)."""
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Tuple, Union

import numpy as np
import torch

from .scenes import ArrayLike, Scenes, _np, _stack


def memorisation(samples: Scenes, train: Union[Scenes, Iterable[ArrayLike]], num_classes: int,
                 free_label: int, chunk: int = 64) -> Dict[str, np.ndarray]:
    """Each sample's best IoU against every training scene (how close it is to a copy).

    For a pair (sample s, training scene r), with r as ground truth and every voxel of the
    4D window counted once: semantic mIoU in the ``dynamiccity`` convention (mean IoU over
    the non-free classes present in r; the classes absent from r are skipped) and binary
    occupancy IoU (non-free vs free). The best over r is kept. A copy of a training scene
    scores 1 on both. Per class one matrix product (M, V) x (V, chunk) of 0/1 float32
    indicators gives the intersections of all pairs, so 32 samples x 512 training windows
    of 8 x 32 x 32 x 8 take about a second per CPU thread.

    Args:
        samples: (M, T, X, Y, Z) or a sequence of (T, X, Y, Z) class ids.
        train: (N, T, X, Y, Z), a sequence of (T, X, Y, Z), or an iterable of such arrays
            or of (n, T, X, Y, Z) blocks (streamed, never all one-hot in memory).
        num_classes: K.
        free_label: id of free space.
        chunk: training scenes per matrix product.

    Returns:
        dict of (M,) arrays: ``miou`` / ``iou`` (float64, best value; NaN when no training
        scene has a non-free class), ``miou_index`` / ``iou_index`` (int64, the index of
        the best training scene in the order given).
    """
    s = _stack(samples, 'samples')
    M, shape = s.shape[0], s.shape[1:]
    ref = _SampleIndicators.build(s, num_classes, free_label)
    best = dict(miou=np.full(M, -np.inf), iou=np.full(M, -np.inf),
                miou_index=np.full(M, -1, np.int64), iou_index=np.full(M, -1, np.int64))
    offset = 0
    for block in _train_blocks(train, chunk):
        if block.shape[1:] != shape:
            raise ValueError(f'memorisation: training scenes of shape {block.shape[1:]} != '
                             f'samples {shape}; compare windows of one (T, X, Y, Z)')
        miou, iou = _pair_ious(ref, block, free_label)  # (M, n) each
        for key, val in (('miou', miou), ('iou', iou)):
            filled = np.where(np.isnan(val), -np.inf, val)
            arg = filled.argmax(1)
            top = filled[np.arange(M), arg]
            better = top > best[key]
            best[key] = np.where(better, top, best[key])
            best[key + '_index'] = np.where(better, arg + offset, best[key + '_index'])
        offset += block.shape[0]
    if offset == 0:
        raise ValueError('memorisation: no training scenes given')
    for key in ('miou', 'iou'):
        best[key] = np.where(np.isinf(best[key]), np.nan, best[key])
    return best


@dataclass
class _SampleIndicators:
    """0/1 float32 indicators of the M samples, flattened over the V voxels of a window."""
    classes: List[int]  # the K-1 non-free classes
    per_class: List[torch.Tensor]  # K-1 x (M, V)
    counts: torch.Tensor  # (M, K-1) voxels of each class
    occupied: torch.Tensor  # (M, V) non-free
    occupied_count: torch.Tensor  # (M,)

    @classmethod
    def build(cls, s: np.ndarray, num_classes: int, free_label: int) -> '_SampleIndicators':
        s_flat = torch.from_numpy(s.reshape(s.shape[0], -1).astype(np.int64))  # (M, V)
        classes = [c for c in range(num_classes) if c != free_label]
        per_class = [(s_flat == c).float() for c in classes]  # K-1 x (M, V)
        occupied = (s_flat != free_label).float()  # (M, V)
        return cls(classes, per_class, torch.stack([x.sum(1) for x in per_class], 1),
                   occupied, occupied.sum(1))


def _train_blocks(train, chunk: int) -> Iterator[np.ndarray]:
    """Training scenes in (n <= chunk, T, X, Y, Z) blocks, from an array or an iterable of
    windows / blocks (streamed)."""
    if isinstance(train, (np.ndarray, torch.Tensor)):
        arr = _stack(train, 'train')
        for i in range(0, len(arr), chunk):
            yield arr[i:i + chunk]
        return
    buf = []
    for item in train:
        a = _np(item)
        if a.ndim == 5:
            yield from (a[i:i + chunk] for i in range(0, len(a), chunk))
            continue
        buf.append(a)
        if len(buf) == chunk:
            yield _stack(buf, 'train')
            buf = []
    if buf:
        yield _stack(buf, 'train')


def _pair_ious(ref: _SampleIndicators, block: np.ndarray,
               free_label: int) -> Tuple[np.ndarray, np.ndarray]:
    """dynamiccity mIoU and binary occupancy IoU (float64 (M, n) each, NaN where undefined)
    of every (sample, training scene) pair, the training scene as ground truth."""
    M, n, k = ref.occupied.shape[0], block.shape[0], len(ref.classes)
    r = torch.from_numpy(block.reshape(n, -1).astype(np.int64))  # (n, V)
    inter = torch.zeros(M, n, k)  # (M, n, K-1)
    r_cnt = torch.zeros(n, k)  # (n, K-1)
    for j, c in enumerate(ref.classes):
        rc = (r == c).float()  # (n, V)
        r_cnt[:, j] = rc.sum(1)
        inter[:, :, j] = ref.per_class[j] @ rc.T  # (M, n)
    inter, r_cnt = inter.double(), r_cnt.double()  # exact integer counts (< 2^24)
    union = ref.counts.double()[:, None] + r_cnt[None] - inter  # (M, n, K-1)
    present = (r_cnt > 0)[None].expand_as(inter)  # dynamiccity: classes in the GT only
    iou_c = torch.where(present, inter / union.clamp(min=1), torch.zeros(()))
    n_present = present.sum(-1)  # (M, n)
    miou = torch.where(n_present > 0, iou_c.sum(-1) / n_present.clamp(min=1),
                       torch.full((), float('nan'))).double().numpy()  # (M, n)
    r_occ = (r != free_label).float()  # (n, V)
    occ_inter = (ref.occupied @ r_occ.T).double()  # (M, n)
    occ_union = ref.occupied_count.double()[:, None] + r_occ.sum(1).double()[None] - occ_inter
    iou = torch.where(occ_union > 0, occ_inter / occ_union.clamp(min=1),
                      torch.full((), float('nan'))).double().numpy()  # (M, n)
    return miou, iou
