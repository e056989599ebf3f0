"""Voxel cross-entropy with optional class weights from class frequencies."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.registry import MODELS


def frequency_class_weights(frequencies: Sequence[float], power: float = 1.0 / 3,
                            eps: Optional[float] = None) -> Tensor:
    """DynamicCity's class weights w_c = (max_k p_k / p_c) ** power.

    Args:
        frequencies: per-class counts (or fractions) n_c.
        power: the exponent (1/3).
        eps: None (default): classes with zero frequency get weight 0 (they never appear as
            targets) and the others exactly (max n / n_c) ** power. A float: the reference's
            formula (3DTopia/DynamicCity @ eaf0c6e, ``dynamic_city/utils/loss_utils.py``,
            ``calculate_ce_weight``, with its ``EPSILON`` = 1e-10): p_c = n_c / (sum n + eps),
            w_c = (max p / (p_c + eps)) ** power, so an unseen class weighs
            (max p / eps) ** power (2069.43 for CarlaSC's slot 11 at eps = 1e-10).
    """
    p = torch.as_tensor(frequencies, dtype=torch.float64)
    if p.ndim != 1 or (p < 0).any():
        raise ValueError(f'class frequencies must be a 1-D non-negative sequence, got {p}')
    if eps is not None:
        if not eps > 0:
            raise ValueError(f'frequency_class_weights: eps must be > 0 or None, got {eps}')
        p = p / (p.sum() + eps)
        return ((p.max() / (p + eps)) ** power).float()
    w = torch.zeros_like(p)
    nz = p > 0
    w[nz] = (p.max() / p[nz]) ** power
    return w.float()


@MODELS.register_module()
class VoxelCrossEntropyLoss(nn.Module):
    """Cross-entropy over (B, K, ...) logits.

    Args:
        loss_weight: multiplier of the loss.
        class_weight: per-class weights (K,), or None.
        class_frequencies: per-class frequencies; turned into weights with
            :func:`frequency_class_weights` (mutually exclusive with ``class_weight``).
        class_weight_eps: ``eps`` of :func:`frequency_class_weights` (None: an unseen class
            weighs 0; 1e-10: the DynamicCity reference's weights).
        ignore_index: label that does not contribute.
    """

    def __init__(self, loss_weight: float = 1.0, class_weight: Optional[Sequence[float]] = None,
                 class_frequencies: Optional[Sequence[float]] = None, ignore_index: int = -100,
                 class_weight_eps: Optional[float] = None):
        super().__init__()
        if class_weight is not None and class_frequencies is not None:
            raise ValueError('give class_weight or class_frequencies, not both')
        if class_weight_eps is not None and class_frequencies is None:
            raise ValueError('VoxelCrossEntropyLoss: class_weight_eps needs class_frequencies')
        if class_frequencies is not None:
            class_weight = frequency_class_weights(class_frequencies, eps=class_weight_eps)
        self.register_buffer('class_weight',
                             None if class_weight is None else torch.as_tensor(
                                 class_weight, dtype=torch.float32), persistent=False)
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Weighted mean of the per-voxel CE over the voxels not ignored, as
        ``F.cross_entropy(reduction='mean')``, but 0 (not NaN) when every voxel is ignored
        (e.g. a window whose ``valid_mask`` is all False)."""
        target = target.long()
        per_voxel = F.cross_entropy(logits.float(), target, weight=self.class_weight,
                                    ignore_index=self.ignore_index,
                                    reduction='none')  # (B, ...), 0 where ignored
        valid = target != self.ignore_index  # (B, ...)
        if self.class_weight is None:
            denom = valid.sum()
        else:
            K = self.class_weight.shape[0]
            denom = (self.class_weight[target.clamp(0, K - 1)] * valid).sum()
        return self.loss_weight * per_voxel.sum() / denom.clamp(min=1e-12)
