"""Occupancy feature extractors for generation metrics (FID / KID / P-R / IS / TC).

No public occupancy feature extractor exists (see ``docs/evaluation.md``), so the toolkit
trains its own, from a config, on real data, in two flavours:

* ``OccFeatureExtractor2D``: per frame, the one-hot semantics are collapsed over Z into
  K - 1 BEV channels (fraction of each non-free class along the column) and fed to a 2D
  CNN.
* ``OccFeatureExtractor3D``: per frame, the K - 1 non-free one-hot channels go through a
  3D CNN over (X, Y, Z).

The per-frame feature (B, T, D) used for FID / KID / precision-recall / temporal
consistency has two parts, concatenated:

1. **global** (``feat_dim`` values): the last stage, adaptive average pooled to a coarse
   G x G BEV map (G x G x 2 for 3D; keeps where things are), flattened, a linear layer
   and a LayerNorm without affine parameters (zero mean, unit variance over the part).
   Trained by the layout and command objectives: it sees scene layout and ego motion.
2. **local** (``local_dim`` values): parameter-free statistics of the voxels, per class:
   the class histogram of the frame (fraction of voxels of each class) and the frame's
   per-voxel reconstruction cross-entropy split by true class (see ``loss_recon``): a
   voxel the reconstruction head cannot explain from its neighbourhood (isolated noise,
   broken surfaces, objects in odd places) raises its class's value; a missing class
   zeroes both of its values. Optionally (``local_stages``) the per-channel spatial mean
   and std of early stages join them (multi-scale activation statistics). Each value is
   standardised with running statistics of the training set (a BatchNorm without affine
   parameters; eval mode uses the stored statistics) and compressed with
   sign(z) log(1 + |z|); no trained projection follows, so nothing can learn to ignore
   them. The global part averages such detail away: the
   format-5 extractor (global part only) did not see 5 % voxel noise or removed vehicles.

Both parts have unit scale per value, as the KID kernel (x.y / D + 1)^3 assumes.

Training objective (self-contained: needs only the sample contract):
  1. ``loss_layout``: from the global feature, predict the coarse BEV layout, i.e. for
     every non-free class the fraction of columns containing it in each cell of a G x G
     grid (binary cross-entropy with soft targets).
  2. ``loss_command``: from the window (mean of the global frame features, mean signed and
     mean absolute change between consecutive frames), classify the driving command
     (STATIC / FORWARD / LEFT / RIGHT) with cross-entropy. Its softmax is the classifier
     used for the Inception Score. Skipped for batches without ``inputs['command']``.
  3. ``loss_recon``: a per-voxel (3D) / per-column (2D) semantic reconstruction head on
     stage ``recon_stage`` (stride 2 by default, upsampled back): cross-entropy of every
     voxel's class (3D), or soft cross-entropy of every column's class distribution along
     Z (2D, free included). It forces the early stages to keep voxel-level detail.

Versioning: ``version`` = first 12 hex digits of the SHA-1 of the extractor's config (its
class and architecture arguments, a format number) plus the training ``dataset_name``. It
is stored in every state dict (``_extra_state``) so checkpoints carry it; loading a
checkpoint whose version differs raises, and metrics report numbers under the version, so
numbers from different extractors are never compared.
"""
import hashlib
import json
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor, nn

from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample

# Bump when the feature definition changes (enters the version hash).
# 6: multi-scale local statistics + reconstruction objective (format 5 was blind to
#    voxel-level artefacts).
EXTRACTOR_FORMAT = 6
LOCAL_PARTS = ('histogram', 'recon')


class VersionMismatchError(RuntimeError):
    """Raised when features / checkpoints of different extractor versions would be mixed."""


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)  # batch-size independent features (no BatchNorm)


class _OccFeatureExtractorBase(BaseModel):
    """Shared heads, losses, versioning; subclasses build the stages on (N, K-1, ...).

    Args:
        num_classes: K (free included).
        free_label: id of free space (dropped from the one-hot input).
        dataset_name: the dataset the extractor is trained on (enters the version).
        feat_dim: size of the global part of the per-frame feature.
        base_channels: channels of the first stage (doubled every stage).
        num_stages: stride-2 stages (after a stride-1 stage 0).
        layout_grid: G of the G x G layout target.
        num_commands: classes of the command head.
        local_stages: stages whose per-channel spatial mean and std join the local part
            (optional; off by default).
        local_parts: parameter-free local statistics of every frame, K values each:
            ``'histogram'`` (fraction of voxels per class) and ``'recon'`` (the frame's
            reconstruction cross-entropy split by true class: high where the voxels do
            not look like the training data, e.g. isolated noise voxels).
            ``local_stages=(), local_parts=()`` and ``loss_weights=dict(recon=0)`` give
            the format-5 extractor (global part only, blind to voxel-level artefacts).
        recon_stage: stage read by the reconstruction head.
        local_eps: variance floor of the local standardisation.
        local_transform: ``'symlog'`` (default): sign(z) log(1 + |z|) of the standardised
            local values, so a set far outside the training data (10 % noise: |z| in
            the hundreds) raises FID strongly but not by orders of magnitude, and the KID
            kernel stays finite; ``'none'``: the z-scores.
        loss_weights: weights of ``layout``, ``command`` and ``recon`` (0 = off).
        frame_chunk: frames per backbone call in :meth:`extract` (bounds memory).
        data_preprocessor: defaults to ``OccDataPreprocessor``.
    """

    def __init__(self, num_classes: int, free_label: int, dataset_name: str,
                 feat_dim: int = 256, base_channels: int = 32, num_stages: int = 3,
                 layout_grid: int = 4, num_commands: int = 4,
                 local_stages: Sequence[int] = (), local_parts: Sequence[str] = (
                     'histogram', 'recon'), recon_stage: int = 1, local_eps: float = 1e-5,
                 local_transform: str = 'symlog',
                 loss_weights: Optional[dict] = None, frame_chunk: int = 16,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            # build from the occworld4d registry (mmengine's BaseModel would use its root)
            data_preprocessor = MODELS.build(data_preprocessor or dict(type='OccDataPreprocessor'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        name = type(self).__name__
        if not 0 <= free_label < num_classes:
            raise ValueError(f'{name}: free_label {free_label} outside [0, {num_classes})')
        local_stages = tuple(int(s) for s in local_stages)
        unknown = set(local_parts) - set(LOCAL_PARTS)
        if unknown:
            raise ValueError(f'{name}: unknown local_parts {sorted(unknown)}; expected a subset '
                             f'of {LOCAL_PARTS}')
        if local_transform not in ('symlog', 'none'):
            raise ValueError(f'{name}: local_transform {local_transform!r} not in '
                             "('symlog', 'none')")
        if 'recon' in local_parts and not (loss_weights or {}).get('recon', 1.0):
            raise ValueError(f'{name}: local_parts has "recon" but loss_weights["recon"] is 0: '
                             'an untrained reconstruction head gives meaningless features')
        bad = [s for s in local_stages + (recon_stage, ) if not 0 <= s <= num_stages]
        if bad:
            raise ValueError(f'{name}: local_stages / recon_stage {bad} outside the stages '
                             f'0..{num_stages}')
        self.num_classes, self.free_label = num_classes, free_label
        self.dataset_name = dataset_name
        self.layout_grid = layout_grid
        self.num_commands, self.frame_chunk = num_commands, frame_chunk
        self.local_stages, self.recon_stage = local_stages, recon_stage
        self.loss_weights = {**dict(layout=1.0, command=1.0, recon=1.0), **(loss_weights or {})}
        arch = dict(type=name, format=EXTRACTOR_FORMAT, num_classes=num_classes,
                    free_label=free_label, feat_dim=feat_dim, base_channels=base_channels,
                    num_stages=num_stages, layout_grid=layout_grid, num_commands=num_commands,
                    local_stages=list(local_stages), local_parts=list(local_parts),
                    recon_stage=recon_stage, local_eps=local_eps,
                    loss_weights=self.loss_weights, dataset=dataset_name)
        if local_stages or local_parts:  # (enters the version only where it acts)
            arch['local_transform'] = local_transform
        self.local_transform = local_transform
        self.arch = arch
        self.version = hashlib.sha1(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:12]
        self.loaded_version: Optional[str] = None  # set when a state dict is loaded
        widths = [base_channels * 2 ** i for i in range(num_stages + 1)]  # stage s: C_s
        self.backbone = nn.ModuleList(
            [self.build_stage(num_classes - 1, widths[0], 1)]
            + [self.build_stage(widths[i], widths[i + 1], 2) for i in range(num_stages)])
        self.global_dim = feat_dim
        self.local_parts = tuple(local_parts)
        self.local_dim = (sum(2 * widths[s] for s in local_stages)  # mean + std per channel
                          + num_classes * len(self.local_parts))
        self.feat_dim = feat_dim + self.local_dim  # D of the per-frame feature
        self.fc = nn.Linear(widths[-1] * self.pool_cells(), feat_dim)
        self.feat_norm = nn.LayerNorm(feat_dim, elementwise_affine=False)
        # running statistics of the local part over the training set (no trained weights)
        self.local_norm = (nn.BatchNorm1d(self.local_dim, affine=False, eps=local_eps)
                           if self.local_dim else None)
        self.layout_head = nn.Linear(feat_dim, (num_classes - 1) * layout_grid ** 2)
        self.command_head = nn.Sequential(nn.Linear(3 * feat_dim, feat_dim), nn.ReLU(),
                                          nn.Linear(feat_dim, num_commands))
        self.recon_head = self.build_recon_head(widths[recon_stage], num_classes)

    # ------------------------------------------------------------------ subclass hooks
    def build_stage(self, cin: int, cout: int, stride: int) -> nn.Module:
        raise NotImplementedError

    def build_recon_head(self, cin: int, num_classes: int) -> nn.Module:
        raise NotImplementedError

    def frame_input(self, voxels: Tensor) -> Tensor:
        """(N, X, Y, Z) int64 -> backbone input."""
        raise NotImplementedError

    def pool_cells(self) -> int:
        """Cells of the pooled map that is flattened into the feature layer."""
        raise NotImplementedError

    def pool(self, h: Tensor) -> Tensor:
        """Last stage output -> (N, C * pool_cells())."""
        raise NotImplementedError

    def recon_nll(self, h: Tensor, voxels: Tensor) -> Tensor:
        """Reconstruction cross-entropy of every frame split by true class, (N, K).

        ``h`` is stage ``recon_stage``'s output for voxels (N, X, Y, Z); row n sums to
        frame n's mean cross-entropy (the reconstruction loss).
        """
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

    def stages(self, voxels: Tensor) -> List[Tensor]:
        """(N, X, Y, Z) -> the output of every stage (stage s: (N, C_s, spatial / 2^s))."""
        h, outs = self.frame_input(voxels), []
        for stage in self.backbone:
            h = stage(h)
            outs.append(h)
        return outs

    def _features(self, outs: List[Tensor], voxels: Tensor, nll: Optional[Tensor]) -> Tensor:
        """Stage outputs -> per-frame features (N, D) = [global (feat_dim), local]."""
        glob = self.feat_norm(self.fc(self.pool(outs[-1])))  # (N, feat_dim)
        if self.local_norm is None:
            return glob
        stats = []
        for s in self.local_stages:
            h = outs[s].flatten(2)  # (N, C_s, cells)
            stats += [h.mean(-1), h.std(-1, unbiased=False)]  # (N, C_s) each
        if 'histogram' in self.local_parts:
            stats.append(F.one_hot(voxels.flatten(1), self.num_classes).float().mean(1))
        if 'recon' in self.local_parts:
            stats.append(nll)  # (N, K)
        z = self.local_norm(torch.cat(stats, -1))  # (N, local_dim) standardised
        if self.local_transform == 'symlog':
            z = torch.sign(z) * torch.log1p(z.abs())  # bounded growth for far outliers
        return torch.cat([glob, z], -1)  # (N, D)

    def frame_features(self, voxels: Tensor) -> Tensor:
        """voxels (B, T, X, Y, Z) int -> per-frame features (B, T, D)."""
        return self._frame_pass(voxels)[0]

    def _frame_pass(self, voxels: Tensor, recon: bool = False):
        """Features (B, T, D) and, with ``recon``, the reconstruction loss of the frames."""
        if voxels.ndim != 5:
            raise ValueError(f'{type(self).__name__} expects voxels (B, T, X, Y, Z), got '
                             f'{tuple(voxels.shape)}')
        B, T = voxels.shape[:2]
        flat = voxels.reshape(B * T, *voxels.shape[2:]).long()  # (B*T, X, Y, Z)
        chunk = flat.shape[0] if self.training else self.frame_chunk  # one BatchNorm batch
        feats, rec = [], flat.new_zeros((), dtype=torch.float32)
        for i in range(0, flat.shape[0], chunk):
            part = flat[i:i + chunk]
            outs = self.stages(part)
            nll = (self.recon_nll(outs[self.recon_stage], part)
                   if recon or 'recon' in self.local_parts else None)  # (n, K)
            feats.append(self._features(outs, part, nll))  # (n, D)
            if recon:
                rec = rec + nll.sum(1).mean() * part.shape[0]
        return torch.cat(feats).view(B, T, self.feat_dim), rec / flat.shape[0]

    def window_logits(self, feats: Tensor) -> Tensor:
        """Per-frame features (B, T, D) -> command logits (B, num_commands) (global part)."""
        feats = feats[..., :self.global_dim]
        if feats.shape[1] > 1:
            step = feats[:, 1:] - feats[:, :-1]  # (B, T-1, feat_dim)
            signed, absolute = step.mean(1), step.abs().mean(1)  # (B, feat_dim) each
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
        w = self.loss_weights
        feats, rec = self._frame_pass(voxels, recon=w['recon'] > 0)  # (B, T, D)
        glob = feats[..., :self.global_dim]
        G, C = self.layout_grid, self.num_classes - 1
        pred = self.layout_head(F.relu(glob)).view(*glob.shape[:2], C, G, G)
        losses = dict(loss_layout=w['layout'] * F.binary_cross_entropy_with_logits(
            pred, self.layout_target(voxels)))
        if w['recon'] > 0:
            losses['loss_recon'] = w['recon'] * rec
        command = inputs.get('command')
        if command is not None:
            logits = self.window_logits(feats)
            losses['loss_command'] = w['command'] * F.cross_entropy(
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

    def build_stage(self, cin, cout, stride):
        return _stage2d(cin, cout, stride)

    def build_recon_head(self, cin, num_classes):
        return nn.Conv2d(cin, num_classes, 3, 1, 1)  # per-column class distribution logits

    def frame_input(self, voxels):
        return self._one_hot(voxels).mean(-1)  # (N, K-1, X, Y): fraction along Z

    def pool_cells(self):
        return self.layout_grid ** 2

    def pool(self, h):
        return F.adaptive_avg_pool2d(h, self.layout_grid).flatten(1)  # (N, C * G * G)

    def recon_nll(self, h, voxels):
        X, Y = voxels.shape[1:3]
        logits = self.recon_head(F.interpolate(h, size=(X, Y), mode='nearest'))  # (N, K, X, Y)
        target = F.one_hot(voxels, self.num_classes).float().mean(3)  # (N, X, Y, K) along Z
        nll = -target.permute(0, 3, 1, 2) * logits.log_softmax(1)  # (N, K, X, Y)
        return nll.flatten(2).mean(-1)  # (N, K)


@MODELS.register_module()
class OccFeatureExtractor3D(_OccFeatureExtractorBase):
    """Voxel extractor: one-hot (K-1, X, Y, Z) -> 3D CNN -> (B, T, D)."""

    def build_stage(self, cin, cout, stride):
        return _stage3d(cin, cout, stride)

    def build_recon_head(self, cin, num_classes):
        return nn.Conv3d(cin, num_classes, 3, 1, 1)  # per-voxel class logits

    def frame_input(self, voxels):
        return self._one_hot(voxels)  # (N, K-1, X, Y, Z)

    def pool_cells(self):
        return self.layout_grid ** 2 * 2

    def pool(self, h):
        G = self.layout_grid
        return F.adaptive_avg_pool3d(h, (G, G, 2)).flatten(1)  # (N, C * G * G * 2)

    def recon_nll(self, h, voxels):
        logits = self.recon_head(F.interpolate(h, size=voxels.shape[1:], mode='nearest'))
        nll = -logits.log_softmax(1).gather(1, voxels[:, None])  # (N, 1, X, Y, Z)
        oh = F.one_hot(voxels, self.num_classes).permute(0, 4, 1, 2, 3)  # (N, K, X, Y, Z)
        return (nll * oh).flatten(2).mean(-1)  # (N, K)
