"""DynamicCity's HexPlane VAE (ICLR 2025; reference 3DTopia/DynamicCity @ eaf0c6e).

A 4D occupancy window (B, T, X, Y, Z) is encoded into six 2D feature planes (a HexPlane)
xy, xz, yz, tx, ty, tz with C = 16 channels, each with a diagonal Gaussian posterior, and
decoded back to class logits (B, K, T, X, Y, Z).

Submodules (the parameter counts at the CarlaSC default: 16 x 128 x 128 x 8, 12 classes,
equal the reference's):

    ``encoder``  HexPlaneEncoder: embedding, two voxel conv encoders, Projection Module,
                 time-plane downsamplers                                        192,688
    ``heads``    one Linear(C -> 2C) per plane = (mu, logvar)                     3,264
    ``decoder``  ExpansionSqueezeDecoder (or QueryDecoder for the ablation)   1,503,336
    total                                                                     1,699,288

(reference names: ``encoder`` = TrEncoder, ``heads`` = HexPlaneVAE.fc_mu_logvar,
``decoder`` = ConvDecoder.)

Switches: ``projection='transformer'|'avgpool'``, ``projection_readout='faithful'|'token'``
(default 'faithful': the reference appends the learnable token last but reads index 0),
``decoder='expansion_squeeze'|'query'``, ``fusion='hadamard'|'sum'``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from occworld4d.models.losses import LovaszSoftmaxLoss, VoxelCrossEntropyLoss, gaussian_kl
from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample

from .base import BaseTokenizer
from .hexplane import PLANES, ExpansionSqueezeDecoder, HexPlaneEncoder, QueryDecoder


@MODELS.register_module()
class HexPlaneVAE(BaseTokenizer):
    """HexPlane VAE tokenizer.

    Args:
        num_classes: K (free included; CarlaSC 12, Occ3D-Waymo 10, Occ3D-nuScenes 12).
        num_frames: T of the window (16).
        spatial_size: (X, Y, Z) of the grid ((128, 128, 8) CarlaSC).
        latent_channels: C of the planes (16).
        voxel_down: log2 downsampling (x, y, z) of the voxel encoders ((1, 1, 1)).
        plane_down: log2 downsampling (t, x, y, z) of the planes after projection
            ((1, 0, 0, 0): only T halves, on the time planes).
        projection: 'transformer' (Projection Module) or 'avgpool' (ablation).
        projection_readout: 'faithful' (default, read index 0 as the reference) or 'token'.
        transformer_depth, transformer_heads, transformer_mlp_dim, dropout: sizes of the
            projection transformers (2, 2, 32, 0.1).
        projection_max_batch: sequences per attention call in the projection transformers.
        projection_attn_drop: dropout on the attention weights (None = ``dropout``, as the
            reference). 0 lets CPU attention use the fused kernel (see
            :class:`~occworld4d.models.tokenizers.hexplane.ProjectionTransformer`).
        decoder: 'expansion_squeeze' (default) or 'query' (ablation).
        fusion: 'hadamard' (default) or 'sum'.
        query_channels: Q, plane channels in the decoder (64).
        hidden_channels: squeeze conv width (128).
        high_res_channels: ConvTranspose3d output width (32).
        num_freq: frequencies of the (t, x, y, z) code (3 -> 24 channels).
        query_mlp_channels, query_mlp_layers: MLP of the query decoder (256, 4).
        frame_chunk: frames per checkpointed decoder chunk in training (None = no chunking).
        class_frequencies: per-class frequencies -> CE weights (max p / p_c) ** (1/3);
            None = unweighted CE.
        class_weight_eps: None (default): a class of frequency 0 weighs 0 in the CE;
            1e-10: the reference's weights (p_c + eps in the ratio, so CarlaSC's unseen slot
            11 weighs 2069.43), see :func:`~occworld4d.models.losses.frequency_class_weights`.
            Training only (no label 11 in CarlaSC: the same loss either way).
        loss_ce_weight, loss_lovasz_weight, loss_kl_weight: loss multipliers (1, 1, 0.0015).
        ignore_index: label given to voxels outside ``inputs['valid_mask']`` in the losses.
        logvar_init: initial bias of the logvar half of every head (None = PyTorch's default
            Linear init, as the reference). At the default init the posterior means have std
            ~0.2 while logvar ~0, so the decoder first trains on a latent that is mostly noise
            (std 1) and the small KL weight barely moves the bias (-0.06 after 200 Adam steps
            at lr 3e-3); -6 (noise std 0.05) lets short CPU runs learn (docs/learning.md).
        lean_lovasz: memory-lean Lovasz-softmax with a precomputed gradient (same value and
            gradient as the autograd one up to float rounding; 0.5 GB less peak memory at the
            full CarlaSC window, no faster). Default False: the autograd one, which the
            measured results (make demo) were obtained with.
    """

    def __init__(self, num_classes: int = 12, num_frames: int = 16,
                 spatial_size: Sequence[int] = (128, 128, 8), latent_channels: int = 16,
                 voxel_down: Sequence[int] = (1, 1, 1), plane_down: Sequence[int] = (1, 0, 0, 0),
                 projection: str = 'transformer', projection_readout: str = 'faithful',
                 transformer_depth: int = 2, transformer_heads: int = 2,
                 transformer_mlp_dim: int = 32, dropout: float = 0.1,
                 projection_max_batch: int = 32768, projection_attn_drop: Optional[float] = None,
                 decoder: str = 'expansion_squeeze',
                 fusion: str = 'hadamard', query_channels: int = 64, hidden_channels: int = 128,
                 high_res_channels: int = 32, num_freq: int = 3, query_mlp_channels: int = 256,
                 query_mlp_layers: int = 4, frame_chunk: Optional[int] = None,
                 class_frequencies: Optional[Sequence[float]] = None,
                 class_weight_eps: Optional[float] = None,
                 loss_ce_weight: float = 1.0, loss_lovasz_weight: float = 1.0,
                 loss_kl_weight: float = 0.0015, ignore_index: int = 255,
                 lean_lovasz: bool = False, logvar_init: Optional[float] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(num_classes, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if len(spatial_size) != 3 or len(voxel_down) != 3 or len(plane_down) != 4:
            raise ValueError('HexPlaneVAE expects spatial_size (X, Y, Z), voxel_down (x, y, z) '
                             f'and plane_down (t, x, y, z); got {spatial_size}, {voxel_down}, '
                             f'{plane_down}')
        if decoder not in ('expansion_squeeze', 'query'):
            raise ValueError(f"decoder must be 'expansion_squeeze' or 'query', got {decoder!r}")
        if class_frequencies is not None and len(class_frequencies) != num_classes:
            raise ValueError(f'HexPlaneVAE: class_frequencies has {len(class_frequencies)} '
                             f'entries, expected one per class (num_classes={num_classes})')
        self.num_frames = num_frames
        self.spatial_size = tuple(spatial_size)
        self.latent_channels = latent_channels
        self.voxel_down = tuple(voxel_down)
        self.plane_down = tuple(plane_down)
        self.ignore_index = ignore_index
        self.encoder = HexPlaneEncoder(
            num_classes, num_frames, spatial_size, latent_channels, voxel_down, plane_down,
            projection, projection_readout, transformer_depth, transformer_heads,
            transformer_mlp_dim, dropout, projection_max_batch, projection_attn_drop)
        self.heads = nn.ModuleDict(
            {p: nn.Linear(latent_channels, 2 * latent_channels) for p in PLANES})
        if logvar_init is not None:
            for head in self.heads.values():  # output channels [C, 2C) are the logvar
                nn.init.constant_(head.bias[latent_channels:], float(logvar_init))
        if decoder == 'expansion_squeeze':
            self.decoder = ExpansionSqueezeDecoder(
                num_classes, latent_channels, query_channels, hidden_channels,
                high_res_channels, voxel_down, plane_down, num_freq, fusion, frame_chunk)
        else:
            self.decoder = QueryDecoder(
                num_classes, latent_channels, query_channels, query_mlp_channels,
                query_mlp_layers, voxel_down, plane_down, num_freq, fusion)
        self.loss_ce = VoxelCrossEntropyLoss(loss_ce_weight, class_frequencies=class_frequencies,
                                             ignore_index=ignore_index,
                                             class_weight_eps=class_weight_eps)
        self.loss_lovasz = LovaszSoftmaxLoss(loss_lovasz_weight, ignore_index=ignore_index,
                                             lean=lean_lovasz)
        self.loss_kl_weight = loss_kl_weight

    # ------------------------------------------------------------------ shapes
    @property
    def plane_shapes(self) -> Dict[str, Tuple[int, int, int]]:
        """(C, a, b) of every plane, e.g. CarlaSC xy (16, 64, 64), tz (16, 8, 4)."""
        vx, vy, vz = self.voxel_down
        pt, px, py, pz = self.plane_down
        X, Y, Z = self.spatial_size
        size = dict(t=self.num_frames >> pt, x=X >> (vx + px), y=Y >> (vy + py),
                    z=Z >> (vz + pz))
        return {p: (self.latent_channels, size[p[0]], size[p[1]]) for p in PLANES}

    @property
    def compression_ratio(self) -> float:
        """(T X Y Z) / (C * sum of plane areas) as the paper defines it (CarlaSC 23.14)."""
        area = sum(a * b for _, a, b in self.plane_shapes.values())
        return self.num_frames * math.prod(self.spatial_size) / (self.latent_channels * area)

    # ------------------------------------------------------------------ encode / decode
    def _check_voxels(self, voxels: Tensor) -> None:
        expected = (self.num_frames, *self.spatial_size)
        if voxels.ndim != 5 or tuple(voxels.shape[1:]) != expected:
            raise ValueError(f'HexPlaneVAE expects voxels (B, {", ".join(map(str, expected))}) '
                             f'(B, T, X, Y, Z), got {tuple(voxels.shape)}')
        if voxels.dtype.is_floating_point:
            raise ValueError(f'HexPlaneVAE expects integer class ids, got dtype {voxels.dtype}')

    def encode_posterior(self, voxels: Tensor) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """voxels (B, T, X, Y, Z) int -> (mu planes, logvar planes), each (B, C, a, b)."""
        self._check_voxels(voxels)
        feats = self.encoder(voxels.long())
        mus, logvars = {}, {}
        for p in PLANES:
            f = feats[p].movedim(1, -1)  # (B, a, b, C)
            mu, logvar = self.heads[p](f).movedim(-1, 1).chunk(2, 1)  # 2 x (B, C, a, b)
            mus[p], logvars[p] = mu, logvar
        return mus, logvars

    @staticmethod
    def sample_posterior(mus: Dict[str, Tensor], logvars: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Reparameterised sample mu + exp(logvar / 2) * eps per plane."""
        return {p: mus[p] + torch.randn_like(mus[p]) * torch.exp(0.5 * logvars[p]) for p in mus}

    def encode(self, voxels: Tensor, sample: bool = False, **cond) -> Dict[str, Tensor]:
        """voxels (B, T, X, Y, Z) -> planes xy (B, C, X', Y'), xz (B, C, X', Z'),
        yz (B, C, Y', Z'), tx (B, C, T', X'), ty (B, C, T', Y'), tz (B, C, T', Z')
        (the posterior mean, or a reparameterised sample when ``sample``)."""
        mus, logvars = self.encode_posterior(voxels)
        return self.sample_posterior(mus, logvars) if sample else mus

    def decode(self, planes: Dict[str, Tensor], **cond) -> Tensor:
        """Six planes (as returned by :meth:`encode`) -> logits (B, K, T, X, Y, Z)."""
        for p, shape in self.plane_shapes.items():
            if p not in planes or tuple(planes[p].shape[1:]) != shape:
                found = None if p not in planes else tuple(planes[p].shape)
                raise ValueError(f'HexPlaneVAE.decode: plane {p!r} must be (B, {shape[0]}, '
                                 f'{shape[1]}, {shape[2]}), found {found}')
        return self.decoder(planes)

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Dict[str, Tensor],
             data_samples: Optional[List[OccDataSample]] = None) -> Dict[str, Tensor]:
        """``loss_ce`` (class-weighted), ``loss_lovasz``, ``loss_kl`` (x 0.0015, mean over
        latent elements). Voxels where ``inputs['valid_mask']`` is False are ignored. The data
        pipeline keeps ``valid_mask`` in the data samples (for the metrics), not in
        ``inputs``, so by default every voxel is trained, as in the reference (whose valid
        mask enters only its metrics)."""
        voxels = inputs['voxels']
        mus, logvars = self.encode_posterior(voxels)
        planes = self.sample_posterior(mus, logvars) if self.training else mus
        logits = self.decode(planes)  # (B, K, T, X, Y, Z)
        target = voxels.long()
        mask = inputs.get('valid_mask')
        if mask is not None:
            if mask.shape != voxels.shape:
                raise ValueError(f'inputs["valid_mask"] must have the voxel shape '
                                 f'{tuple(voxels.shape)}, found {tuple(mask.shape)}')
            target = target.masked_fill(~mask.bool(), self.ignore_index)
        mu = torch.cat([m.flatten() for m in mus.values()])
        logvar = torch.cat([v.flatten() for v in logvars.values()])
        return dict(loss_ce=self.loss_ce(logits, target),
                    loss_lovasz=self.loss_lovasz(logits, target),
                    loss_kl=self.loss_kl_weight * gaussian_kl(mu.float(), logvar.float()))
