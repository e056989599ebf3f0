"""OccWorld's scene tokenizer: a per-frame 2D VQ-VAE over height-folded occupancy.

Each frame (X, Y, Z) of class ids is embedded (K -> E = 8) with Z folded into channels
(Z * E = 128 maps of X x Y), encoded by a 2D ResNet encoder (ch 64, mult (1, 2, 4),
2 ResNet blocks a level, attention at 50 x 50 and in the middle) to z (128, X / 4, Y / 4),
quantized with a 512 x 128 codebook, and decoded by the mirrored decoder to Z * E maps
whose dot product with the class table gives the logits. 200 x 200 x 16 frames give
50 x 50 tokens a frame (reference: wzzheng/OccWorld, 14,168,272 parameters).

Shapes: B batch, T frames, X, Y, Z voxels, D code width, K classes.
"""
from typing import Dict, List, Optional, Sequence

from torch import Tensor, nn

from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample
from .base import BaseTokenizer
from .blocks_2d import Decoder2d, Encoder2d, SemanticEmbedding, semantic_recon_loss
from .quantizers import QuantizerOutput, VectorQuantizer, build_quantizer, vq_loss_terms


@MODELS.register_module()
class OccWorldVQVAE(BaseTokenizer):
    """Per-frame 2D VQ-VAE (OccWorld).

    Args:
        num_classes: K (18 for Occ3D-nuScenes, free included).
        height: Z voxels (16).
        embed_dim: E, class-embedding width (8).
        ch: encoder / decoder base width (64).
        ch_mult: width multipliers per level ((1, 2, 4) -> 4x downsampling).
        num_res_blocks: ResNet blocks per level (2).
        attn_resolutions: map sides with attention after each ResNet block ((50,)).
        resolution: reference input side X (200); fixes where the attention sits.
        z_channels: latent width before and after the codebook (128).
        quantizer: config of the :class:`VectorQuantizer` (code_dim must equal z_channels).
        ce_weight, lovasz_weight, vq_weight: loss weights (10, 1, 1).
        lean_lovasz: fused, memory-lean CE + Lovasz (same values and gradients).
        checkpoint_levels: recompute the ResNet blocks of this many highest-resolution levels
            of encoder and decoder in backward (0 = off; 1 = the 200 x 200 level: less memory,
            a little more time; see tools/analysis_tools/benchmark_tokenizer.py).
        data_preprocessor, init_cfg: see :class:`BaseTokenizer`.
    """

    def __init__(self, num_classes: int = 18, height: int = 16, embed_dim: int = 8,
                 ch: int = 64, ch_mult: Sequence[int] = (1, 2, 4), num_res_blocks: int = 2,
                 attn_resolutions: Sequence[int] = (50,), resolution: int = 200,
                 z_channels: int = 128, dropout: float = 0.0,
                 quantizer: Optional[dict] = None, ce_weight: float = 10.0,
                 lovasz_weight: float = 1.0, vq_weight: float = 1.0, lean_lovasz: bool = True,
                 checkpoint_levels: int = 0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(num_classes, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.semantic = SemanticEmbedding(num_classes, embed_dim, height)
        C = self.semantic.channels
        self.encoder = Encoder2d(C, ch, ch_mult, num_res_blocks, attn_resolutions, resolution,
                                 out_channels=z_channels, dropout=dropout,
                                 checkpoint_levels=checkpoint_levels)
        self.quant_conv = nn.Conv2d(z_channels, z_channels, 1)
        self.quantizer: VectorQuantizer = build_quantizer(quantizer, z_channels)
        self.post_quant_conv = nn.Conv2d(z_channels, z_channels, 1)
        self.decoder = Decoder2d(z_channels, ch, ch_mult, num_res_blocks, attn_resolutions,
                                 resolution, out_channels=C, dropout=dropout,
                                 checkpoint_levels=checkpoint_levels)
        self.downsample = 2 ** (len(ch_mult) - 1)
        self.ce_weight, self.lovasz_weight, self.vq_weight = ce_weight, lovasz_weight, vq_weight
        self.lean_lovasz = lean_lovasz

    # ---- tokens ------------------------------------------------------------------------
    def token_shape(self, X: int, Y: int) -> tuple:
        """(h, w) of the token map of an X x Y frame."""
        h, w = X, Y
        for _ in range(len(self.decoder.up) - 1):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def quantize(self, voxels: Tensor) -> QuantizerOutput:
        """voxels (B, T, X, Y, Z) -> quantizer output with quantized (B * T, D, h, w)."""
        x = self.semantic.fold(voxels).flatten(0, 1)  # (B T, Z E, X, Y)
        z = self.quant_conv(self.encoder(x))  # (B T, D, h, w)
        return self.quantizer(z)

    def encode(self, voxels: Tensor, **cond) -> Tensor:
        """voxels (B, T, X, Y, Z) int64 -> quantized codes (B, T, D, h, w) (h = X / 4)."""
        B, T = voxels.shape[:2]
        q = self.quantize(voxels).quantized  # (B T, D, h, w)
        return q.view(B, T, *q.shape[1:])  # (B, T, D, h, w)

    def encode_to_indices(self, voxels: Tensor) -> Tensor:
        """voxels (B, T, X, Y, Z) -> code ids (B, T, h, w) int64."""
        B, T = voxels.shape[:2]
        idx = self.quantize(voxels).indices  # (B T, h, w)
        return idx.view(B, T, *idx.shape[1:])

    def decode_indices(self, indices: Tensor, size: Optional[Sequence[int]] = None) -> Tensor:
        """code ids (B, T, h, w) -> logits (B, K, T, X, Y, Z)."""
        return self.decode(self.quantizer.get_codebook_entry(indices.flatten(0, 1)).unflatten(
            0, indices.shape[:2]), size=size)

    def decode(self, latent: Tensor, size: Optional[Sequence[int]] = None, **cond) -> Tensor:
        """codes (B, T, D, h, w) -> logits (B, K, T, X, Y, Z).

        Args:
            latent: quantized codes (B, T, D, h, w).
            size: output (X, Y); default (h * 4, w * 4) (give it for sizes that are not
                multiples of the downsampling).
        """
        if latent.ndim != 5:
            raise ValueError(f'{type(self).__name__}.decode expects codes (B, T, D, h, w), got '
                             f'{tuple(latent.shape)}')
        B, T = latent.shape[:2]
        if size is None:
            size = (latent.shape[-2] * self.downsample, latent.shape[-1] * self.downsample)
        h = self.post_quant_conv(latent.flatten(0, 1))  # (B T, D, h, w)
        feats = self.decoder(h, tuple(size))  # (B T, Z E, X, Y)
        return self.semantic.logits(feats.unflatten(0, (B, T)))  # (B, K, T, X, Y, Z)

    def reconstruct(self, voxels: Tensor, **cond) -> Tensor:
        return self.decode(self.encode(voxels), size=voxels.shape[2:4])

    # ---- training ----------------------------------------------------------------------
    def loss(self, inputs: Dict[str, Tensor],
             data_samples: Optional[List[OccDataSample]] = None) -> Dict[str, Tensor]:
        """CE x 10 + Lovasz + VQ loss; logs code perplexity and dead codes."""
        voxels = inputs['voxels']
        self.semantic.check_voxels(voxels)
        B, T = voxels.shape[:2]
        q = self.quantize(voxels)
        codes = q.quantized.unflatten(0, (B, T))  # (B, T, D, h, w)
        logits = self.decode(codes, size=voxels.shape[2:4])  # (B, K, T, X, Y, Z)
        losses = semantic_recon_loss(logits, voxels, self.ce_weight, self.lovasz_weight,
                                     lean=self.lean_lovasz)
        losses.update(vq_loss_terms(q, self.vq_weight))
        return losses
