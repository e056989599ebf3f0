"""Lovasz-softmax loss (Berman et al., CVPR 2018) for multi-class voxel segmentation."""
from typing import Optional

import torch
from torch import Tensor, nn

from occworld4d.registry import MODELS


def _lovasz_grad(gt_sorted: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. sorted errors."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_softmax(logits: Tensor, target: Tensor, ignore_index: Optional[int] = None,
                   classes: str = 'present') -> Tensor:
    """Lovasz-softmax over all voxels of the batch.

    Args:
        logits: (B, K, ...) unnormalised class scores.
        target: (B, ...) int class ids.
        ignore_index: voxels with this label do not contribute.
        classes: 'present' (classes present in the target) or 'all'.

    Returns:
        Scalar loss, mean over the scored classes.
    """
    K = logits.shape[1]
    probs = logits.float().softmax(1).movedim(1, -1).reshape(-1, K)  # (N, K)
    labels = target.reshape(-1)  # (N,)
    if ignore_index is not None:
        keep = labels != ignore_index
        probs, labels = probs[keep], labels[keep]
    if labels.numel() == 0:
        return logits.sum() * 0.0
    losses = []
    for c in range(K):
        fg = (labels == c).float()  # (N,)
        if classes == 'present' and fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


@MODELS.register_module()
class LovaszSoftmaxLoss(nn.Module):
    """Module form of :func:`lovasz_softmax` with a loss weight."""

    def __init__(self, loss_weight: float = 1.0, ignore_index: Optional[int] = None,
                 classes: str = 'present'):
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.classes = classes

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * lovasz_softmax(logits, target, self.ignore_index, self.classes)
