"""OccSora's 4D scene tokenizer: a VideoGPT-style VQ-VAE over height-folded clips.

A clip of T frames (X, Y, Z) of class ids is embedded (K -> E = 8) with Z folded into
channels (Z * E = 128) and read as a video (B, 128, T, X, Y); the encoder (three stride-2
k4 3D convs 128 -> 512 with ReLU, a 3x3x3 conv, four attention-residual blocks with axial
attention over t, h, w, BN, ReLU) and a pre-quantization conv 512 -> 128 give the latent,
quantized by a 512 x 128 codebook; the mirrored decoder (four attention-residual blocks,
three k4 s2 transposed convs) returns Z * E maps whose dot product with the class table gives
the logits. 32 x 200 x 200 x 16 clips give 128 x 4 x 25 x 25 tokens (512x compression).

Note on the reference (wzzheng/OccSora @ 9f8d1f0): its config names a 2D ResNet encoder,
but the model builds ``Encoder(512, 4, (8, 8, 8))`` / ``Decoder`` of VideoGPT regardless;
this module is that architecture. The reference quantizer wraps two extra 1x1 convs
(128 -> 128) around the codebook; they are kept (``quant_conv`` / ``post_quant_conv``) so
that the parameter count matches: 137,369,744. Its forward also overrides the latent with
a fixed file (issue #4); that is not reproduced.

Shapes: B batch, T frames, X, Y, Z voxels, D code width, K classes.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from torch import Tensor, nn

from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample
from .base import BaseTokenizer
from .blocks_2d import SemanticEmbedding, semantic_recon_loss
from .blocks_3d import SamePadConv3d, VideoDecoder3d, VideoEncoder3d
from .quantizers import QuantizerOutput, VectorQuantizer, build_quantizer, vq_loss_terms

#: Token-size presets for 32 x 200 x 200 clips: name "D x T' x H' x W'" -> (d_t, d_h, d_w).
TOKEN_PRESETS = {
    '128x4x25x25': (8, 8, 8),    # OccSora's reference: 2,500 tokens, 512x compression
    '128x8x25x25': (4, 8, 8),
    '128x4x50x50': (8, 4, 4),
    '128x8x50x50': (4, 4, 4),
    '128x16x50x50': (2, 4, 4),
}


@MODELS.register_module()
class OccSoraVQVAE(BaseTokenizer):
    """4D VQ-VAE (OccSora).

    Args:
        num_classes: K (18).
        height: Z voxels (16).
        embed_dim: E (8).
        hidden: encoder / decoder width (512).
        num_res_blocks: attention-residual blocks in encoder and decoder (4).
        num_heads: axial-attention heads (2).
        downsample: (d_t, d_h, d_w) powers of two; overridden by ``token_preset``.
        token_preset: a key of :data:`TOKEN_PRESETS` (e.g. '128x4x25x25').
        z_channels: code width D (128).
        quantizer: config of the :class:`VectorQuantizer` (beta 1.0 by default).
        ce_weight, lovasz_weight, vq_weight: loss weights (10, 1, 1).
        lean_lovasz: memory-lean Lovasz (same values and gradients).
    """

    def __init__(self, num_classes: int = 18, height: int = 16, embed_dim: int = 8,
                 hidden: int = 512, num_res_blocks: int = 4, num_heads: int = 2,
                 downsample: Sequence[int] = (8, 8, 8), token_preset: Optional[str] = None,
                 z_channels: int = 128, quantizer: Optional[dict] = None,
                 ce_weight: float = 10.0, lovasz_weight: float = 1.0, vq_weight: float = 1.0,
                 lean_lovasz: bool = True, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(num_classes, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if token_preset is not None:
            if token_preset not in TOKEN_PRESETS:
                raise ValueError(f'unknown token_preset {token_preset!r}; choose from '
                                 f'{sorted(TOKEN_PRESETS)}')
            downsample = TOKEN_PRESETS[token_preset]
        self.downsample = tuple(int(d) for d in downsample)
        if len(self.downsample) != 3 or max(self.downsample) < 2:
            raise ValueError(f'downsample must be 3 powers of two (d_t, d_h, d_w), at least one '
                             f'>= 2, got {tuple(downsample)}')
        self.semantic = SemanticEmbedding(num_classes, embed_dim, height)
        C = self.semantic.channels
        self.encoder = VideoEncoder3d(C, hidden, num_res_blocks, self.downsample, num_heads)
        self.pre_quant = SamePadConv3d(hidden, z_channels, 1)
        self.quant_conv = nn.Conv3d(z_channels, z_channels, 1)
        self.quantizer: VectorQuantizer = build_quantizer(quantizer, z_channels)
        self.post_quant_conv = nn.Conv3d(z_channels, z_channels, 1)
        self.post_quant = SamePadConv3d(z_channels, hidden, 1)
        self.decoder = VideoDecoder3d(C, hidden, num_res_blocks, self.downsample, num_heads)
        self.ce_weight, self.lovasz_weight, self.vq_weight = ce_weight, lovasz_weight, vq_weight
        self.lean_lovasz = lean_lovasz

    # ---- tokens ------------------------------------------------------------------------
    def token_shape(self, T: int, X: int, Y: int) -> Tuple[int, int, int]:
        """(T', H', W') of the token grid of a T x X x Y clip (sides must be divisible)."""
        dt, dh, dw = self.downsample
        if T % dt or X % dh or Y % dw:
            raise ValueError(f'clip (T, X, Y) = {(T, X, Y)} is not divisible by the '
                             f'downsampling {self.downsample}')
        return T // dt, X // dh, Y // dw

    def quantize(self, voxels: Tensor) -> QuantizerOutput:
        """voxels (B, T, X, Y, Z) -> quantizer output with quantized (B, D, T', H', W')."""
        B, T, X, Y, _ = voxels.shape
        self.token_shape(T, X, Y)  # fails early on indivisible clips
        x = self.semantic.fold(voxels).transpose(1, 2)  # (B, Z E, T, X, Y)
        z = self.quant_conv(self.pre_quant(self.encoder(x)))  # (B, D, T', H', W')
        return self.quantizer(z)

    def encode(self, voxels: Tensor, **cond) -> Tensor:
        """voxels (B, T, X, Y, Z) int64 -> quantized latent (B, D, T', H', W')."""
        return self.quantize(voxels).quantized

    def encode_to_indices(self, voxels: Tensor) -> Tensor:
        """voxels (B, T, X, Y, Z) -> code ids (B, T', H', W') int64."""
        return self.quantize(voxels).indices

    def decode_indices(self, indices: Tensor) -> Tensor:
        """code ids (B, T', H', W') -> logits (B, K, T, X, Y, Z)."""
        return self.decode(self.quantizer.get_codebook_entry(indices))

    def decode(self, latent: Tensor, **cond) -> Tensor:
        """quantized latent (B, D, T', H', W') -> logits (B, K, T, X, Y, Z)."""
        if latent.ndim != 5:
            raise ValueError(f'{type(self).__name__}.decode expects a latent (B, D, T\', H\', '
                             f'W\'), got {tuple(latent.shape)}')
        h = self.post_quant(self.post_quant_conv(latent))  # (B, hidden, T', H', W')
        feats = self.decoder(h)  # (B, Z E, T, X, Y)
        return self.semantic.logits(feats.transpose(1, 2))  # (B, K, T, X, Y, Z)

    # ---- training ----------------------------------------------------------------------
    def loss(self, inputs: Dict[str, Tensor],
             data_samples: Optional[List[OccDataSample]] = None) -> Dict[str, Tensor]:
        """CE x 10 + Lovasz + VQ loss; logs code perplexity and dead codes."""
        voxels = inputs['voxels']
        self.semantic.check_voxels(voxels)
        q = self.quantize(voxels)
        logits = self.decode(q.quantized)  # (B, K, T, X, Y, Z)
        losses = semantic_recon_loss(logits, voxels, self.ce_weight, self.lovasz_weight,
                                     lean=self.lean_lovasz)
        losses.update(vq_loss_terms(q, self.vq_weight))
        return losses
