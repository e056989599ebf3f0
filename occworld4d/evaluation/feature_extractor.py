"""Occupancy feature extractors for generation metrics (FID / KID / P-R / IS / TC).

No public occupancy feature extractor exists (see ``docs/evaluation.md``), so the toolkit
trains its own, from a config, on real data, in two flavours:

* ``OccFeatureExtractor2D``: per frame, the one-hot semantics are collapsed over Z into
  K - 1 BEV channels (fraction of each non-free class along the column) and fed to a 2D
  CNN.
* ``OccFeatureExtractor3D``: per frame, the K - 1 non-free one-hot channels go through a
  3D CNN over (X, Y, Z).

Both end in adaptive average pooling to a coarse G x G BEV map (G x G x 2 for 3D; keeps
where things are), flattened, a linear layer and a LayerNorm without affine parameters
(so every feature has zero mean and unit variance over D: a fixed scale, as the KID kernel
(x.y / D + 1)^3 assumes). That is the per-frame feature (B, T, D) used for FID / KID /
precision-recall / temporal consistency.

Training objective (self-contained: needs only the sample contract):
  1. ``loss_layout``: from each frame feature, predict the coarse BEV layout, i.e. for
     every non-free class the fraction of columns containing it in each cell of a G x G
     grid (binary cross-entropy with soft targets). This forces the feature to encode
     which classes are where.
  2. ``loss_command``: from the window (mean of the frame features, mean signed and mean
     absolute change between consecutive frames), classify the driving command
     (STATIC / FORWARD / LEFT / RIGHT) with cross-entropy. Its softmax is the classifier used for the Inception
     Score. Skipped for batches without ``inputs['command']``.

Versioning: ``version`` = first 12 hex digits of the SHA-1 of the extractor's config (its
class and architecture arguments) plus the training ``dataset_name``. It is stored in
every state dict (``_extra_state``) so checkpoints carry it; loading a checkpoint whose
version differs raises, and metrics report numbers under the version, so numbers from
different extractors are never compared.
"""
import hashlib
import json
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor, nn

from occworld4d.registry import MODELS

EXTRACTOR_FORMAT = 5  # bump when the feature definition changes (enters the version hash)


class VersionMismatchError(RuntimeError):
    """Raised when features / checkpoints of different extractor versions would be mixed."""


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)  # batch-size independent features (no BatchNorm)


class _OccFeatureExtractorBase(BaseModel):
    """Shared heads, losses, versioning; subclasses build ``self.backbone`` on (N, K-1, ...).

    Args:
        num_classes: K (free included).
        free_label: id of free space (dropped from the one-hot input).
        dataset_name: the dataset the extractor is trained on (enters the version).
        feat_dim: D, size of the per-frame feature.
        base_channels: channels of the first stage (doubled every stage).
        num_stages: stride-2 stages.
        layout_grid: G of the G x G layout target.
        num_commands: classes of the command head.
        loss_weights: weights of ``layout`` and ``command``.
        frame_chunk: frames per backbone call in :meth:`extract` (bounds memory).
        data_preprocessor: defaults to ``OccDataPreprocessor``.
    """

    def __init__(self, num_classes: int, free_label: int, dataset_name: str,
                 feat_dim: int = 256, base_channels: int = 32, num_stages: int = 3,
                 layout_grid: int = 4, num_commands: int = 4,
                 loss_weights: Optional[dict] = None, frame_chunk: int = 16,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            # build from the occworld4d registry (mmengine's BaseModel would use its root)
            data_preprocessor = MODELS.build(data_preprocessor or dict(type='OccDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0 <= free_label < num_classes:
            raise ValueError(f'{type(self).__name__}: free_label {free_label} outside '
                             f'[0, {num_classes})')
        self.num_classes, self.free_label = num_classes, free_label
        self.dataset_name = dataset_name
        self.feat_dim, self.layout_grid = feat_dim, layout_grid
        self.num_commands, self.frame_chunk = num_commands, frame_chunk
        self.loss_weights = {**dict(layout=1.0, command=1.0), **(loss_weights or {})}
        arch = dict(type=type(self).__name__, format=EXTRACTOR_FORMAT, num_classes=num_classes,
                    free_label=free_label, feat_dim=feat_dim, base_channels=base_channels,
                    num_stages=num_stages, layout_grid=layout_grid, num_commands=num_commands,
                    loss_weights=self.loss_weights, dataset=dataset_name)
        self.arch = arch
        self.version = hashlib.sha1(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:12]
        self.loaded_version: Optional[str] = None  # set when a state dict is loaded
        self.backbone = self.build_backbone(num_classes - 1, base_channels, num_stages)
        out_c = base_channels * 2 ** num_stages
        self.fc = nn.Linear(out_c * self.pool_cells(), feat_dim)
        self.feat_norm = nn.LayerNorm(feat_dim, elementwise_affine=False)
        self.layout_head = nn.Linear(feat_dim, (num_classes - 1) * layout_grid ** 2)
        self.command_head = nn.Sequential(nn.Linear(3 * feat_dim, feat_dim), nn.ReLU(),
                                          nn.Linear(feat_dim, num_commands))

    # ------------------------------------------------------------------ subclass hooks
    def build_backbone(self, in_channels: int, base: int, stages: int) -> nn.Module:
        raise NotImplementedError

    def frame_input(self, voxels: Tensor) -> Tensor:
        """(N, X, Y, Z) int64 -> backbone input."""
        raise NotImplementedError

    def pool_cells(self) -> int:
        """Cells of the pooled map that is flattened into the feature layer."""
        raise NotImplementedError

    def pool(self, h: Tensor) -> Tensor:
        """Backbone output -> (N, C * pool_cells())."""
        raise NotImplementedError

    # ------------------------------------------------------------------ versioning
    def get_extra_state(self) -> dict:
        return dict(version=self.version, arch=self.arch)

    def set_extra_state(self, state: dict) -> None:
        found = state.get('version') if isinstance(state, dict) else None
        if found != self.version:
            raise VersionMismatchError(
                f'{type(self).__name__}: checkpoint holds extractor version {found!r} '
                f'({state.get("arch") if isinstance(state, dict) else state}) but this config '
                f'is version {self.version!r} ({self.arch}); features of different versions '
                'are not comparable: use the config the checkpoint was trained with')
        self.loaded_version = found

    # ------------------------------------------------------------------ features
    def _one_hot(self, voxels: Tensor) -> Tensor:
        """(N, X, Y, Z) int64 -> float (N, K-1, X, Y, Z): one-hot without the free channel."""
        if voxels.numel() and (int(voxels.min()) < 0 or int(voxels.max()) >= self.num_classes):
            raise ValueError(f'{type(self).__name__}: voxel ids span [{int(voxels.min())}, '
                             f'{int(voxels.max())}], expected [0, {self.num_classes})')
        oh = F.one_hot(voxels.long(), self.num_classes)  # (N, X, Y, Z, K)
        keep = [k for k in range(self.num_classes) if k != self.free_label]
        return oh[..., keep].permute(0, 4, 1, 2, 3).float()  # (N, K-1, X, Y, Z)

    def frame_features(self, voxels: Tensor) -> Tensor:
        """voxels (B, T, X, Y, Z) int -> per-frame features (B, T, D)."""
        if voxels.ndim != 5:
            raise ValueError(f'{type(self).__name__} expects voxels (B, T, X, Y, Z), got '
                             f'{tuple(voxels.shape)}')
        B, T = voxels.shape[:2]
        flat = voxels.reshape(B * T, *voxels.shape[2:])  # (B*T, X, Y, Z)
        outs = []
        for i in range(0, B * T, self.frame_chunk):
            h = self.backbone(self.frame_input(flat[i:i + self.frame_chunk]))
            outs.append(self.feat_norm(self.fc(self.pool(h))))  # (n, D)
        return torch.cat(outs).view(B, T, self.feat_dim)  # (B, T, D)

    def window_logits(self, feats: Tensor) -> Tensor:
        """Per-frame features (B, T, D) -> command logits (B, num_commands)."""
        if feats.shape[1] > 1:
            step = feats[:, 1:] - feats[:, :-1]  # (B, T-1, D)
            signed, absolute = step.mean(1), step.abs().mean(1)  # (B, D) each
        else:
            signed = absolute = torch.zeros_like(feats[:, 0])
        return self.command_head(torch.cat([feats.mean(1), signed, absolute], -1))

    @torch.no_grad()
    def extract(self, voxels: Tensor) -> Dict[str, Tensor]:
        """Everything the generation metrics need.

        Args:
            voxels: (B, T, X, Y, Z) or (T, X, Y, Z) class ids.

        Returns:
            dict(frame_feats=(B, T, D) float32, probs=(B, num_commands) softmax).
        """
        if voxels.ndim == 4:
            voxels = voxels[None]
        feats = self.frame_features(voxels.long())
        return dict(frame_feats=feats, probs=self.window_logits(feats).softmax(-1))

    # ------------------------------------------------------------------ training
    def layout_target(self, voxels: Tensor) -> Tensor:
        """(B, T, X, Y, Z) -> per-class column-presence fractions (B, T, K-1, G, G)."""
        B, T = voxels.shape[:2]
        oh = self._one_hot(voxels.reshape(B * T, *voxels.shape[2:]))  # (B*T, K-1, X, Y, Z)
        present = oh.amax(-1)  # (B*T, K-1, X, Y)
        tgt = F.adaptive_avg_pool2d(present, self.layout_grid)  # (B*T, K-1, G, G)
        return tgt.view(B, T, *tgt.shape[1:])

    def loss(self, inputs: Dict[str, Tensor], data_samples=None) -> Dict[str, Tensor]:
        voxels = inputs['voxels']
        feats = self.frame_features(voxels)  # (B, T, D)
        G, C = self.layout_grid, self.num_classes - 1
        pred = self.layout_head(F.relu(feats)).view(*feats.shape[:2], C, G, G)
        losses = dict(loss_layout=self.loss_weights['layout'] * F.binary_cross_entropy_with_logits(
            pred, self.layout_target(voxels)))
        command = inputs.get('command')
        if command is not None:
            logits = self.window_logits(feats)
            losses['loss_command'] = self.loss_weights['command'] * F.cross_entropy(
                logits, command.long().view(-1).to(logits.device))
            losses['acc_command'] = (logits.argmax(-1) == command.view(-1)).float().mean()
        return losses

    def forward(self, inputs: Dict[str, Tensor], data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        out = self.extract(inputs['voxels'])
        if mode == 'tensor':
            return out
        if mode == 'predict':
            from occworld4d.structures import OccDataSample
            if data_samples is None:
                data_samples = [OccDataSample() for _ in range(out['probs'].shape[0])]
            for i, ds in enumerate(data_samples):
                ds.frame_feats = out['frame_feats'][i].cpu()
                ds.command_probs = out['probs'][i].cpu()
            return data_samples
        raise ValueError(f'unknown mode {mode!r}; expected "loss", "predict" or "tensor"')


def _stage2d(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), _norm(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1), _norm(cout), nn.ReLU(inplace=True))


def _stage3d(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1), _norm(cout), nn.ReLU(inplace=True),
                         nn.Conv3d(cout, cout, 3, 1, 1), _norm(cout), nn.ReLU(inplace=True))


@MODELS.register_module()
class OccFeatureExtractor2D(_OccFeatureExtractorBase):
    """BEV extractor: per-class column fractions (K-1, X, Y) -> 2D CNN -> (B, T, D)."""

    def build_backbone(self, in_channels, base, stages):
        layers = [_stage2d(in_channels, base, 1)]
        layers += [_stage2d(base * 2 ** i, base * 2 ** (i + 1), 2) for i in range(stages)]
        return nn.Sequential(*layers)

    def frame_input(self, voxels):
        return self._one_hot(voxels).mean(-1)  # (N, K-1, X, Y): fraction along Z

    def pool_cells(self):
        return self.layout_grid ** 2

    def pool(self, h):
        return F.adaptive_avg_pool2d(h, self.layout_grid).flatten(1)  # (N, C * G * G)


@MODELS.register_module()
class OccFeatureExtractor3D(_OccFeatureExtractorBase):
    """Voxel extractor: one-hot (K-1, X, Y, Z) -> 3D CNN -> (B, T, D)."""

    def build_backbone(self, in_channels, base, stages):
        layers = [_stage3d(in_channels, base, 1)]
        layers += [_stage3d(base * 2 ** i, base * 2 ** (i + 1), 2) for i in range(stages)]
        return nn.Sequential(*layers)

    def frame_input(self, voxels):
        return self._one_hot(voxels)  # (N, K-1, X, Y, Z)

    def pool_cells(self):
        return self.layout_grid ** 2 * 2

    def pool(self, h):
        G = self.layout_grid
        return F.adaptive_avg_pool3d(h, (G, G, 2)).flatten(1)  # (N, C * G * G * 2)
