"""Base class of every scene tokenizer (stage 1 of every method).

A tokenizer is an ``mmengine.model.BaseModel`` so that stage 1 trains through the
Runner as is, and a plain module inside a stage-2 generator (loaded frozen).

Shapes: B batch, T frames, X, Y, Z voxels, K classes.
"""
from abc import abstractmethod
from typing import Dict, List, Optional

import torch
from mmengine.model import BaseModel
from torch import Tensor

from occworld4d.structures import OccDataSample


class BaseTokenizer(BaseModel):
    """Interface: ``encode(voxels, **cond) -> latent``, ``decode(latent) -> logits``.

    Subclasses implement :meth:`encode`, :meth:`decode` and :meth:`loss`.

    Args:
        num_classes: K, classes of the vocabulary (free included).
        data_preprocessor: config of the data preprocessor.
        init_cfg: mmengine init config.
    """

    def __init__(self, num_classes: int, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_classes = num_classes

    @abstractmethod
    def encode(self, voxels: Tensor, **cond) -> Tensor:
        """voxels: (B, T, X, Y, Z) int64 class ids -> latent (method-specific shape)."""

    @abstractmethod
    def decode(self, latent: Tensor, **cond) -> Tensor:
        """latent -> logits (B, K, T, X, Y, Z)."""

    @abstractmethod
    def loss(self, inputs: Dict[str, Tensor],
             data_samples: Optional[List[OccDataSample]] = None) -> Dict[str, Tensor]:
        """Training losses; keys start with ``loss_`` (mmengine sums only those)."""

    def reconstruct(self, voxels: Tensor, **cond) -> Tensor:
        """voxels (B, T, X, Y, Z) -> logits (B, K, T, X, Y, Z) (deterministic: posterior mean)."""
        return self.decode(self.encode(voxels, **cond))

    def forward(self, inputs: Dict[str, Tensor], data_samples: Optional[List[OccDataSample]] = None,
                mode: str = 'tensor'):
        voxels = inputs['voxels']
        if voxels.ndim != 5:
            raise ValueError(f'{type(self).__name__} expects inputs["voxels"] of shape '
                             f'(B, T, X, Y, Z), got {tuple(voxels.shape)}')
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.reconstruct(voxels)
        if mode == 'predict':
            with torch.no_grad():
                pred = self.reconstruct(voxels).argmax(1).to(torch.uint8)  # (B, T, X, Y, Z)
            return attach_predictions(pred, voxels, data_samples)
        raise ValueError(f'unknown mode {mode!r}; expected "loss", "predict" or "tensor"')


def attach_predictions(pred: Tensor, voxels: Optional[Tensor],
                       data_samples: Optional[List[OccDataSample]]) -> List[OccDataSample]:
    """Put ``pred_semantics`` (and ``gt_semantics`` if missing) on one sample per batch item."""
    if data_samples is None:
        data_samples = [OccDataSample() for _ in range(pred.shape[0])]
    for i, ds in enumerate(data_samples):
        ds.pred_semantics = pred[i].cpu()
        if voxels is not None and 'gt_semantics' not in ds:
            ds.gt_semantics = voxels[i].to(torch.uint8).cpu()
    return data_samples
