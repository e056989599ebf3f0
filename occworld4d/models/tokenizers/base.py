"""Base class of every scene tokenizer (stage 1 of every method).

A tokenizer is an ``mmengine.model.BaseModel`` so that stage 1 trains through the
Runner as is, and a plain module inside a stage-2 generator (loaded frozen).

Shapes: B batch, T frames, X, Y, Z voxels, K classes.
"""
import warnings
from abc import abstractmethod
from typing import Dict, List, Optional

import torch
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import load_checkpoint
from torch import Tensor

from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample

# Buffers that no reference checkpoint (and no checkpoint before session 9) holds and that the
# module fills when they are missing from what it loads (``BaseTokenizer.seen_classes``: all
# classes seen): key checks let them be missing, and the reverse weight conversion drops them.
FILLED_ON_LOAD = ('seen_classes', )


def filled_on_load(key: str) -> bool:
    """Whether a state-dict key may be missing from a checkpoint (see ``FILLED_ON_LOAD``)."""
    return key.rsplit('.', 1)[-1] in FILLED_ON_LOAD


class BaseTokenizer(BaseModel):
    """Interface: ``encode(voxels, **cond) -> latent``, ``decode(latent) -> logits``.

    Subclasses implement :meth:`encode`, :meth:`decode` and :meth:`loss`.

    Every tokenizer records which classes its training targets held: the bool buffer
    ``seen_classes`` (K,) is saved with the weights and OR-ed with each training batch's
    classes in ``forward(mode='loss')`` (across ranks when distributed). A checkpoint without
    it (ported reference weights, runs before session 9) loads as all seen. A generator can
    decode with the unseen classes masked out (``LatentDiffusion(mask_unseen_classes=True)``):
    a class that no training scene held then cannot appear in a sample. Nothing seen (an
    untrained tokenizer) means no mask (:meth:`class_support` is None).

    Args:
        num_classes: K, classes of the vocabulary (free included).
        data_preprocessor: config of the data preprocessor.
        init_cfg: mmengine init config.
    """

    def __init__(self, num_classes: int, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.register_buffer('seen_classes', torch.zeros(int(num_classes), dtype=torch.bool))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'seen_classes'
        if key not in state_dict:  # older checkpoints, ported weights: every class counts
            state_dict[key] = torch.ones_like(self.seen_classes)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def observe_classes(self, voxels: Tensor) -> None:
        """OR the classes of a training batch (B, T, X, Y, Z) into ``seen_classes``."""
        ids = voxels.reshape(-1).long()
        ids = ids[(ids >= 0) & (ids < self.num_classes)]  # ignore labels (e.g. 255) do not count
        seen = torch.bincount(ids, minlength=self.num_classes)[:self.num_classes] > 0
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            seen = seen.to(torch.int32)
            torch.distributed.all_reduce(seen, op=torch.distributed.ReduceOp.MAX)
            seen = seen.bool()
        self.seen_classes |= seen.to(self.seen_classes.device)

    def class_support(self) -> Optional[Tensor]:
        """Bool (K,) of the classes seen in training, or None when none was recorded."""
        return self.seen_classes if bool(self.seen_classes.any()) else None

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
            self.observe_classes(voxels)
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.reconstruct(voxels)
        if mode == 'predict':
            with torch.no_grad():
                pred = self.reconstruct(voxels).argmax(1).to(torch.uint8)  # (B, T, X, Y, Z)
            return attach_predictions(pred, voxels, data_samples)
        raise ValueError(f'unknown mode {mode!r}; expected "loss", "predict" or "tensor"')


class MissingTokenizerCheckpointError(ValueError):
    """A stage-2 model is trained without ``model.tokenizer_ckpt`` and without opting in to a
    random tokenizer (``model.allow_random_tokenizer=True``)."""


class FrozenTokenizerModel(BaseModel):
    """Base of every stage-2 model over a frozen stage-1 tokenizer (``LatentDiffusion``,
    ``OccWorld``): builds the tokenizer with its parameters frozen, keeps it in eval mode (no
    dropout, no norm-statistics updates) and loads ``tokenizer_ckpt`` into it in
    :meth:`init_weights` (the Runner calls it before training; sampling / testing load the full
    checkpoint instead).

    Args:
        tokenizer: config of the tokenizer.
        tokenizer_ckpt: stage-1 checkpoint (keys of the tokenizer, an optional ``module.``
            prefix of distributed training removed), loaded strictly. Training without it is
            an error (:class:`MissingTokenizerCheckpointError`, raised by
            :meth:`init_weights`, i.e. where ``Runner.train`` starts) unless
            ``allow_random_tokenizer=True`` or the Runner loads the whole model from
            ``load_from`` / ``resume`` (whose checkpoint holds the tokenizer weights).
            Testing / sampling from a full checkpoint needs neither.
        allow_random_tokenizer: train on a randomly initialised tokenizer (tests, ablations);
            a warning says so. Default False.
        data_preprocessor: config of the data preprocessor (default ``OccDataPreprocessor``).
        init_cfg: mmengine init config.
    """

    def __init__(self, tokenizer: dict, tokenizer_ckpt: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 allow_random_tokenizer: bool = False):
        if data_preprocessor is None:
            data_preprocessor = dict(type='OccDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # build in occworld4d's scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.tokenizer = MODELS.build(tokenizer)
        for p in self.tokenizer.parameters():
            p.requires_grad_(False)
        self.tokenizer.eval()
        self.tokenizer_ckpt = tokenizer_ckpt
        self.allow_random_tokenizer = bool(allow_random_tokenizer)
        # set by SafeCheckpointHook.before_run when the Runner will load the whole model
        # (load_from / resume) after init_weights: the tokenizer weights come from there
        self._tokenizer_from_full_checkpoint = False

    def init_weights(self) -> None:
        super().init_weights()
        if self.tokenizer_ckpt:
            load_checkpoint(self.tokenizer, self.tokenizer_ckpt, map_location='cpu', strict=True,
                            revise_keys=[(r'^module\.', '')])
        elif self._tokenizer_from_full_checkpoint:
            pass
        elif self.allow_random_tokenizer:
            warnings.warn(f'{type(self).__name__}: training on a randomly initialised tokenizer '
                          '(model.allow_random_tokenizer=True, no model.tokenizer_ckpt)',
                          stacklevel=2)
        else:
            raise MissingTokenizerCheckpointError(
                f'{type(self).__name__}: model.tokenizer_ckpt is not set, so the stage-2 model '
                'would train on a randomly initialised (meaningless) tokenizer. Point it at the '
                'stage-1 checkpoint (--cfg-options model.tokenizer_ckpt=work_dirs/<tokenizer '
                'run>/epoch_N.pth), or set model.allow_random_tokenizer=True to train on a '
                'random tokenizer on purpose')

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen
        return self


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
