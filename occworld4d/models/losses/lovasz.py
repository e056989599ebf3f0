"""Lovasz-softmax loss (Berman et al., CVPR 2018) for multi-class voxel segmentation."""
from typing import Optional, Tuple

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


def _lovasz_value_and_grad(probs: Tensor, labels: Tensor,
                           max_elements: int = 1 << 24) -> Tuple[Tensor, Tensor]:
    """Lovasz-softmax over the present classes and its gradient w.r.t. ``probs``.

    The present classes are scored together: one (C, N) sort along N and (C, N) cumulative
    sums, in chunks of classes of at most ``max_elements`` values (about 16 M: 200 MB of
    errors, permutation and gradient), instead of one 1-D sort per class.

    Args:
        probs: (N, K) class probabilities.
        labels: (N,) class ids.
        max_elements: largest C x N block scored at once.

    Returns:
        (loss, grad): scalar mean over present classes, and (N, K) d loss / d probs with
        d loss_c / d p_c[perm_i] = lovasz_grad_i * (1 - 2 fg_c[perm_i]) / #present.
    """
    N, K = probs.shape
    grad = torch.zeros_like(probs)
    in_range = (labels >= 0) & (labels < K)  # other labels belong to no class
    counts = torch.bincount(labels[in_range], minlength=K)  # (K,)
    present = torch.nonzero(counts).flatten()  # (C,) class ids with at least one voxel
    if present.numel() == 0:
        return probs.new_zeros(()), grad
    total = probs.new_zeros(())
    step = max(1, max_elements // max(N, 1))
    for start in range(0, present.numel(), step):
        cls = present[start:start + step]  # (c,)
        fg = labels[None, :] == cls[:, None]  # (c, N)
        p = probs[:, cls].t()  # (c, N)
        errors = torch.where(fg, 1.0 - p, p)  # |fg - p|
        errors_sorted, perm = torch.sort(errors, dim=1, descending=True)  # (c, N)
        fg_sorted = torch.gather(fg, 1, perm).to(probs.dtype)  # (c, N)
        gts = counts[cls].to(probs.dtype)[:, None]  # (c, 1)
        intersection = gts - fg_sorted.cumsum(1)
        union = gts + (1.0 - fg_sorted).cumsum(1)
        jac = 1.0 - intersection / union  # Lovasz extension of the Jaccard loss (c, N)
        if N > 1:
            jac[:, 1:] = jac[:, 1:] - jac[:, :-1]
        total += (errors_sorted * jac).sum()
        g = torch.zeros_like(errors).scatter_(1, perm, jac * (1.0 - 2.0 * fg_sorted))  # (c, N)
        grad[:, cls] = g.t()
    total /= present.numel()
    grad /= present.numel()
    return total, grad


class _LovaszSoftmaxLean(torch.autograd.Function):
    """Lovasz-softmax on probabilities with a precomputed gradient.

    Same value and gradient as the autograd version (``losses.lovasz_softmax``), but the
    backward graph holds one (N, K) gradient instead of every per-class sort, permutation
    and intermediate.
    """

    @staticmethod
    def forward(ctx, probs: Tensor, labels: Tensor) -> Tensor:  # probs (N, K), labels (N,)
        loss, grad = _lovasz_value_and_grad(probs, labels)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        grad, = ctx.saved_tensors
        return grad * grad_out, None


def lovasz_softmax_lean(logits: Tensor, target: Tensor,
                        ignore_index: Optional[int] = None) -> Tensor:
    """Lovasz-softmax over 'present' classes of (B, K, ...) logits and (B, ...) targets.

    Same value and gradient as ``losses.lovasz_softmax(logits, target, ignore_index)``:
    voxels labelled ``ignore_index`` do not contribute (0 when every voxel is ignored).
    """
    K = logits.shape[1]
    probs = logits.float().softmax(1).movedim(1, -1).reshape(-1, K)  # (N, K)
    labels = target.reshape(-1)  # (N,)
    if ignore_index is not None:
        keep = labels != ignore_index  # (N,)
        if not bool(keep.all()):
            probs, labels = probs[keep], labels[keep]  # (N', K), (N',)
        if labels.numel() == 0:
            return logits.sum() * 0.0
    return _LovaszSoftmaxLean.apply(probs, labels)


@MODELS.register_module()
class LovaszSoftmaxLoss(nn.Module):
    """Module form of :func:`lovasz_softmax` with a loss weight.

    Args:
        loss_weight: multiplier of the loss.
        ignore_index: label that does not contribute.
        classes: 'present' or 'all'.
        lean: with ``classes='present'``, :func:`lovasz_softmax_lean` (same value and
            gradient up to float rounding; the backward keeps one (N, K) gradient instead of
            every per-class sort: less memory, about the same time).
    """

    def __init__(self, loss_weight: float = 1.0, ignore_index: Optional[int] = None,
                 classes: str = 'present', lean: bool = False):
        super().__init__()
        if classes not in ('present', 'all'):
            raise ValueError(f'LovaszSoftmaxLoss: classes must be "present" or "all", got '
                             f'{classes!r}')
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.classes = classes
        self.lean = lean and classes == 'present'

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.lean:
            return self.loss_weight * lovasz_softmax_lean(logits, target, self.ignore_index)
        return self.loss_weight * lovasz_softmax(logits, target, self.ignore_index, self.classes)
