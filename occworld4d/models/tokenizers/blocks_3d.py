"""Building blocks of the 4D (T, H, W) scene tokenizers: a VideoGPT-style encoder / decoder.

OccSora's tokenizer treats a clip of height-folded frames as a video (B, C, T, H, W):
strided 3D convs (kernel 4, stride 2 on the axes still to be reduced), a 3x3x3 conv, a stack
of attention-residual blocks (BatchNorm, ReLU, 3x3x3 conv to C / 2, BN, ReLU, 1x1x1 conv back
to C, BN, ReLU, axial attention summed over t, h and w) and BN + ReLU; the decoder mirrors it
with transposed convs. Attention goes through the project's
:class:`~occworld4d.models.layers.Attention`.

Shapes: B batch, C channels, T frames, H, W map sides.
"""
import math
from typing import Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.models.layers.attention import Attention
from .blocks_2d import attend


def _same_pad(kernel: Sequence[int], stride: Sequence[int]) -> Tuple[int, ...]:
    """F.pad amounts (last axis first) of a total k - s per axis, the odd one on the left."""
    pad = []
    for k, s in zip(reversed(kernel), reversed(stride)):
        p = k - s
        pad += [p // 2 + p % 2, p // 2]
    return tuple(pad)


class SamePadConv3d(nn.Module):
    """Conv3d whose output side is ceil(input side / stride) (for sides divisible by s)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1,
                 bias: bool = True):
        super().__init__()
        k = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        s = (stride,) * 3 if isinstance(stride, int) else tuple(stride)
        self.pad = _same_pad(k, s)
        self.conv = nn.Conv3d(in_channels, out_channels, k, stride=s, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, T, H, W) -> (B, C_out, T / s_t, H / s_h, W / s_w)."""
        return self.conv(F.pad(x, self.pad))


class SamePadConvTranspose3d(nn.Module):
    """ConvTranspose3d whose output side is input side x stride (inverse of the above)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=4, stride=2,
                 bias: bool = True):
        super().__init__()
        k = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        s = (stride,) * 3 if isinstance(stride, int) else tuple(stride)
        self.pad = _same_pad(k, s)
        self.convt = nn.ConvTranspose3d(in_channels, out_channels, k, stride=s, bias=bias,
                                        padding=tuple(ki - 1 for ki in k))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, T, H, W) -> (B, C_out, T s_t, H s_h, W s_w)."""
        return self.convt(F.pad(x, self.pad))


class AxialAttention3d(nn.Module):
    """Self-attention along t, along h and along w of (B, C, T, H, W), the three summed.

    Three separate :class:`Attention` layers (q, k, v without bias, output projection with
    bias, as VideoGPT's axial block).
    """

    def __init__(self, channels: int, num_heads: int = 2):
        super().__init__()
        self.attn_t = Attention(channels, num_heads=num_heads, qkv_bias=False)
        self.attn_h = Attention(channels, num_heads=num_heads, qkv_bias=False)
        self.attn_w = Attention(channels, num_heads=num_heads, qkv_bias=False)

    @staticmethod
    def _along(attn: Attention, x: Tensor, axis: int) -> Tensor:
        """Attention along ``axis`` (1, 2 or 3) of channel-last x (B, T, H, W, C)."""
        moved = x.movedim(axis, -2)  # (B, a, b, L, C)
        shape = moved.shape
        # short sequences (T', H' or W'): CPU math kernel without recomputation
        seqs = moved.reshape(-1, shape[-2], shape[-1])  # (B a b, L, C)
        out = attend(attn, seqs, recompute=False)  # (B a b, L, C)
        return out.view(shape).movedim(-2, axis)  # (B, T, H, W, C)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, T, H, W) -> (B, C, T, H, W) (no residual; the caller adds it)."""
        h = x.movedim(1, -1)  # (B, T, H, W, C)
        out = (self._along(self.attn_w, h, 3) + self._along(self.attn_h, h, 2)
               + self._along(self.attn_t, h, 1))
        return out.movedim(-1, 1)  # (B, C, T, H, W)


class AttentionResidualBlock3d(nn.Module):
    """x + [BN, ReLU, conv3 C -> C/2, BN, ReLU, conv1 C/2 -> C, BN, ReLU, axial attention](x)."""

    def __init__(self, channels: int, num_heads: int = 2):
        super().__init__()
        self.block = nn.Sequential(
            nn.BatchNorm3d(channels), nn.ReLU(),
            SamePadConv3d(channels, channels // 2, 3, bias=False),
            nn.BatchNorm3d(channels // 2), nn.ReLU(),
            SamePadConv3d(channels // 2, channels, 1, bias=False),
            nn.BatchNorm3d(channels), nn.ReLU(),
            AxialAttention3d(channels, num_heads))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def stride_schedule(downsample: Sequence[int]) -> Tuple[Tuple[int, int, int], ...]:
    """Per-conv strides of a (d_t, d_h, d_w) power-of-two downsampling.

    One conv per halving of the most reduced axis; an axis is strided (2) while it still
    has halvings left. (8, 8, 8) -> three (2, 2, 2); (4, 8, 8) -> (2, 2, 2), (2, 2, 2),
    (1, 2, 2).
    """
    logs = []
    for d in downsample:
        n = int(round(math.log2(d))) if d >= 1 else -1
        if d < 1 or 2 ** n != d:
            raise ValueError(f'downsample factors must be powers of two, got {tuple(downsample)}')
        logs.append(n)
    strides = []
    for i in range(max(logs)):
        strides.append(tuple(2 if n > i else 1 for n in logs))
    return tuple(strides)


class VideoEncoder3d(nn.Module):
    """Strided 3D convs (k4) with ReLU, a 3x3x3 conv, attention-residual blocks, BN, ReLU.

    Args:
        in_channels: Z * E (128).
        hidden: width (512).
        num_res_blocks: attention-residual blocks (4).
        downsample: (d_t, d_h, d_w) powers of two ((8, 8, 8): 32 x 200 x 200 -> 4 x 25 x 25).
        num_heads: axial-attention heads (2).
    """

    def __init__(self, in_channels: int = 128, hidden: int = 512, num_res_blocks: int = 4,
                 downsample: Sequence[int] = (8, 8, 8), num_heads: int = 2):
        super().__init__()
        strides = stride_schedule(downsample)
        self.convs = nn.ModuleList(
            SamePadConv3d(in_channels if i == 0 else hidden, hidden, 4, stride=s)
            for i, s in enumerate(strides))
        self.conv_last = SamePadConv3d(hidden if strides else in_channels, hidden, 3)
        self.res_stack = nn.Sequential(
            *[AttentionResidualBlock3d(hidden, num_heads) for _ in range(num_res_blocks)],
            nn.BatchNorm3d(hidden), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, T, H, W) -> (B, hidden, T / d_t, H / d_h, W / d_w)."""
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.res_stack(self.conv_last(x))


class VideoDecoder3d(nn.Module):
    """Attention-residual blocks, BN, ReLU, then transposed 3D convs (k4, s2) with ReLU
    between them up to ``out_channels`` (Z * E)."""

    def __init__(self, out_channels: int = 128, hidden: int = 512, num_res_blocks: int = 4,
                 upsample: Sequence[int] = (8, 8, 8), num_heads: int = 2):
        super().__init__()
        self.res_stack = nn.Sequential(
            *[AttentionResidualBlock3d(hidden, num_heads) for _ in range(num_res_blocks)],
            nn.BatchNorm3d(hidden), nn.ReLU())
        strides = stride_schedule(upsample)
        self.convts = nn.ModuleList(
            SamePadConvTranspose3d(hidden, out_channels if i == len(strides) - 1 else hidden,
                                   4, stride=s)
            for i, s in enumerate(strides))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, hidden, t, h, w) -> (B, out_channels, t u_t, h u_h, w u_w)."""
        h = self.res_stack(x)
        for i, convt in enumerate(self.convts):
            h = convt(h)
            if i < len(self.convts) - 1:
                h = F.relu(h)
        return h
