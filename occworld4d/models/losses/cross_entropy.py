"""Voxel cross-entropy with optional class weights from class frequencies."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.registry import MODELS


def frequency_class_weights(frequencies: Sequence[float], power: float = 1.0 / 3) -> Tensor:
    """DynamicCity's class weights w_c = (max_k p_k / p_c) ** power.

    Classes with zero frequency get weight 0 (they never appear as targets).
    """
    p = torch.as_tensor(frequencies, dtype=torch.float64)
    if p.ndim != 1 or (p < 0).any():
        raise ValueError(f'class frequencies must be a 1-D non-negative sequence, got {p}')
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
        ignore_index: label that does not contribute.
    """

    def __init__(self, loss_weight: float = 1.0, class_weight: Optional[Sequence[float]] = None,
                 class_frequencies: Optional[Sequence[float]] = None, ignore_index: int = -100):
        super().__init__()
        if class_weight is not None and class_frequencies is not None:
            raise ValueError('give class_weight or class_frequencies, not both')
        if class_frequencies is not None:
            class_weight = frequency_class_weights(class_frequencies)
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
