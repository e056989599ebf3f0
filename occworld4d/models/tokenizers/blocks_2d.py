"""Building blocks of the per-frame 2D scene tokenizers (OccWorld VQ-VAE, UniScene VAE).

Two parts:

* the semantic head shared by every occupancy tokenizer that folds the height axis into
  channels: :class:`SemanticEmbedding` (class ids -> embedded, Z-folded feature maps, and
  decoder features -> class logits by a dot product with the same class table) and
  :func:`semantic_recon_loss` (CE x w + Lovasz, with a memory-lean Lovasz-softmax);
* a taming-style 2D ResNet encoder / decoder (GroupNorm + SiLU ResNet blocks, single-head
  self-attention through the project's :class:`~occworld4d.models.layers.Attention`).

Shapes: B batch, T frames, X, Y, Z voxels (Z height), E class-embedding width,
C channels, K classes, N voxels.
"""
from functools import partial
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.checkpoint import checkpoint

from occworld4d.models.layers.attention import Attention
from occworld4d.models.losses import lovasz_softmax
from occworld4d.models.losses.lovasz import (  # noqa: F401  (lovasz_softmax_lean re-exported)
    _lovasz_value_and_grad, lovasz_softmax_lean)


def attend(attn: Attention, x: Tensor, recompute: bool = True, **kwargs) -> Tensor:
    """``attn(x)``, on CPU with SDPA's math kernel under activation checkpointing.

    PyTorch's CPU flash-attention backward is about 10x slower than the math kernel at
    OccWorld's shapes (2,500 tokens, head width 256: 2.9 s vs 0.3 s CPU time a frame); the
    math kernel keeps the N x N weights for backward, so on CPU the call is checkpointed
    (only its input is kept and the forward is recomputed in backward) unless ``recompute``
    is False (short sequences). CUDA is unchanged.
    """
    if x.is_cuda:
        return attn(x, **kwargs)

    def run(t: Tensor) -> Tensor:
        with sdpa_kernel(SDPBackend.MATH):
            return attn(t, **kwargs)

    if recompute and torch.is_grad_enabled() and (x.requires_grad or any(
            p.requires_grad for p in attn.parameters())):
        return checkpoint(run, x, use_reentrant=False)
    return run(x)

# --------------------------------------------------------------------------------------
# Semantic head: class table embedding with Z folded into channels, and logits from it.
# --------------------------------------------------------------------------------------


class SemanticEmbedding(nn.Module):
    """Class-embedding table used at both ends of a tokenizer.

    ``fold`` embeds each voxel's class (K -> E) and folds the Z axis into channels
    (channel index = z * E + e); ``logits`` undoes the fold on decoder features and scores
    every class by the dot product with its table row (OccWorld / OccSora / UniScene).

    Args:
        num_classes: K.
        embed_dim: E (8 in every reference).
        height: Z voxels (16 for Occ3D-nuScenes).
    """

    def __init__(self, num_classes: int, embed_dim: int, height: int):
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.height = height
        self.table = nn.Embedding(num_classes, embed_dim)  # (K, E)

    @property
    def channels(self) -> int:
        """Z * E, the width of the folded feature maps."""
        return self.height * self.embed_dim

    def check_voxels(self, voxels: Tensor) -> None:
        if voxels.ndim != 5 or voxels.shape[-1] != self.height:
            raise ValueError(f'expected voxels (B, T, X, Y, Z={self.height}), got '
                             f'{tuple(voxels.shape)}')
        if voxels.dtype.is_floating_point:
            raise ValueError(f'expected integer class ids, got dtype {voxels.dtype}')

    def fold(self, voxels: Tensor) -> Tensor:
        """voxels (B, T, X, Y, Z) int -> features (B, T, Z * E, X, Y)."""
        self.check_voxels(voxels)
        B, T, X, Y, Z = voxels.shape
        x = self.table(voxels.long())  # (B, T, X, Y, Z, E)
        return x.view(B, T, X, Y, Z * self.embed_dim).permute(0, 1, 4, 2, 3)  # (B, T, ZE, X, Y)

    def logits(self, features: Tensor) -> Tensor:
        """features (B, T, Z * E, X, Y) -> logits (B, K, T, X, Y, Z)."""
        B, T, C, X, Y = features.shape
        if C != self.channels:
            raise ValueError(f'decoder features have {C} channels, expected Z * E = '
                             f'{self.channels}')
        f = features.reshape(B, T, self.height, self.embed_dim, X, Y)  # (B, T, Z, E, X, Y)
        return torch.einsum('btzexy,ke->bktxyz', f, self.table.weight)  # (B, K, T, X, Y, Z)


class _FusedCELovasz(torch.autograd.Function):
    """Cross-entropy and Lovasz-softmax of (N, K) logits in one pass.

    Keeps only the probabilities and the Lovasz gradient w.r.t. them (2 x N x K floats) for
    backward, where the autograd pair keeps the log-softmax, the softmax, their layout copies
    and the Lovasz gradient. Backward: d CE / d z = (p - onehot) / N and
    d Lovasz / d z = p * (G - sum_k G_k p_k) with G = d Lovasz / d p.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, labels: Tensor):  # (N, K) float, (N,) int64
        probs = torch.log_softmax(logits, 1)  # (N, K) log-probabilities for now
        ce = -probs.gather(1, labels[:, None]).mean()
        probs = probs.exp_()  # (N, K) probabilities, in place
        lov, grad = _lovasz_value_and_grad(probs, labels)
        ctx.save_for_backward(probs, grad, labels)
        return ce, lov

    @staticmethod
    def backward(ctx, g_ce: Tensor, g_lov: Tensor):
        probs, grad_p, labels = ctx.saved_tensors
        N = probs.shape[0]
        g = grad_p * g_lov  # (N, K)
        g = probs * (g - (g * probs).sum(1, keepdim=True))  # through the softmax
        g.add_(probs * (g_ce / N))
        g.scatter_add_(1, labels[:, None], (-g_ce / N).expand(N, 1).to(g.dtype))
        return g, None


def fused_ce_lovasz(logits: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
    """(CE, Lovasz-softmax) of (B, K, ...) logits against (B, ...) class ids, memory-lean.

    Same values and gradients as ``F.cross_entropy`` + ``losses.lovasz_softmax``.
    """
    K = logits.shape[1]
    flat = logits.float().movedim(1, -1).reshape(-1, K)  # (N, K)
    return _FusedCELovasz.apply(flat, target.reshape(-1).long())


def semantic_recon_loss(logits: Tensor, target: Tensor, ce_weight: float = 10.0,
                        lovasz_weight: float = 1.0, lean: bool = True) -> dict:
    """The reconstruction loss of every occupancy tokenizer: CE x ce_weight + Lovasz.

    Args:
        logits: (B, K, T, X, Y, Z).
        target: (B, T, X, Y, Z) class ids.
        ce_weight: OccWorld / OccSora / UniScene use 10.
        lovasz_weight: 1 in every reference.
        lean: fused, memory-lean CE + Lovasz (same values and gradients); False uses
            ``F.cross_entropy`` and the autograd ``losses.lovasz_softmax``.

    Returns:
        dict(loss_ce=..., loss_lovasz=...).
    """
    if logits.shape[2:] != target.shape[1:] or logits.shape[0] != target.shape[0]:
        raise ValueError(f'logits {tuple(logits.shape)} do not match target '
                         f'{tuple(target.shape)} (expected (B, K, *S) and (B, *S))')
    if lean:
        ce, lov = fused_ce_lovasz(logits, target)
    else:
        ce = F.cross_entropy(logits.float(), target.long())
        lov = lovasz_softmax(logits, target)
    return dict(loss_ce=ce_weight * ce, loss_lovasz=lovasz_weight * lov)


# --------------------------------------------------------------------------------------
# 2D ResNet encoder / decoder (taming-transformers layout, as used by OccWorld).
# --------------------------------------------------------------------------------------


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups (C // 4 groups up to 32 channels), eps 1e-6."""
    groups = channels // 4 if channels <= 32 else 32
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResnetBlock2d(nn.Module):
    """Two 3x3 convs with GroupNorm plus a (1x1) shortcut.

    ``style='taming'`` (OccWorld): norm, SiLU, conv, norm, SiLU, dropout, conv.
    ``style='uniscene'``: norm, conv, ReLU, norm, conv, dropout, ReLU (same parameters).
    """

    def __init__(self, in_channels: int, out_channels: Optional[int] = None,
                 dropout: float = 0.0, style: str = 'taming'):
        super().__init__()
        if style not in ('taming', 'uniscene'):
            raise ValueError(f'ResnetBlock2d style must be "taming" or "uniscene", got {style!r}')
        out_channels = out_channels or in_channels
        self.style = style
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1)
                         if in_channels != out_channels else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C_in, H, W) -> (N, C_out, H, W)."""
        if self.style == 'taming':
            h = self.conv1(F.silu(self.norm1(x)))
            h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        else:
            h = F.relu(self.conv1(self.norm1(x)))
            h = F.relu(self.dropout(self.conv2(self.norm2(h))))
        return self.shortcut(x) + h


class AttnBlock2d(nn.Module):
    """GroupNorm then single-head self-attention over all H * W positions, residual."""

    def __init__(self, channels: int, num_heads: int = 1):
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = Attention(channels, num_heads=num_heads, qkv_bias=True)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C, H, W) -> (N, C, H, W)."""
        N, C, H, W = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        h = attend(self.attn, h).transpose(1, 2).reshape(N, C, H, W)  # (N, C, H, W)
        return x + h


class Downsample2d(nn.Module):
    """3x3 conv, stride 2, padding 1: (H, W) -> (ceil(H / 2), ceil(W / 2))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample2d(nn.Module):
    """Nearest x2, crop or zero-pad to the target size, 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, size: Tuple[int, int]) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode='nearest')  # (N, C, 2H, 2W)
        dh, dw = size[0] - x.shape[2], size[1] - x.shape[3]
        if dh or dw:  # negative pads crop
            x = F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
        return self.conv(x)


def _run_block(block: nn.Module, x: Tensor, recompute: bool) -> Tensor:
    """``block(x)``, under activation checkpointing when ``recompute`` and training."""
    if recompute and torch.is_grad_enabled() and block.training:
        return checkpoint(block, x, use_reentrant=False)
    return block(x)


def level_sizes(size: Tuple[int, int], levels: int) -> List[Tuple[int, int]]:
    """Spatial size at each encoder level: [(H, W), (ceil(H/2), ceil(W/2)), ...]."""
    sizes = [tuple(size)]
    for _ in range(levels - 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class Encoder2d(nn.Module):
    """conv_in, ``len(ch_mult)`` levels of ResNet blocks (+ attention where the map side is
    in ``attn_resolutions``) with stride-2 downsampling between levels, a middle block
    (ResNet, attention, ResNet), GroupNorm, SiLU, conv_out to ``out_channels``.

    Args:
        in_channels: input channels (Z * E = 128 for Occ3D).
        ch: base width (64).
        ch_mult: width multipliers per level ((1, 2, 4): 64, 128, 256).
        num_res_blocks: ResNet blocks per level (2).
        attn_resolutions: map sides (H) at which attention follows each ResNet block.
        resolution: input side H of the reference configuration (200); attention levels are
            chosen from it, so a different input size keeps the same architecture.
        out_channels: channels of the output (z 128; 2 x latent for a Gaussian posterior).
        dropout: dropout in the ResNet blocks.
        style: 'taming' (OccWorld: SiLU blocks, full single-head attention, SiLU before
            conv_out) or 'uniscene' (ReLU blocks, axial 2-head attention, ReLU before conv_out).
        checkpoint_levels: recompute the ResNet blocks of this many highest-resolution levels
            in backward instead of storing their activations (0 = off; 1 saves most memory).
        axial_mode: 'uniscene' style only: 'hw' (attention along H and W) or 'reference'
            (UniScene's released encoder exactly, see :class:`AxialAttnBlock2d`).
    """

    def __init__(self, in_channels: int, ch: int = 64, ch_mult: Sequence[int] = (1, 2, 4),
                 num_res_blocks: int = 2, attn_resolutions: Sequence[int] = (50,),
                 resolution: int = 200, out_channels: int = 128, dropout: float = 0.0,
                 style: str = 'taming', checkpoint_levels: int = 0, axial_mode: str = 'hw'):
        super().__init__()
        attn_cls = _attention_class(style, axial_mode)
        self.style = style
        self.checkpoint_levels = checkpoint_levels
        self.num_levels = len(ch_mult)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        res, block_in = resolution, ch
        for level, mult in enumerate(ch_mult):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                stage.block.append(ResnetBlock2d(block_in, ch * mult, dropout, style))
                block_in = ch * mult
                if res in attn_resolutions:
                    stage.attn.append(attn_cls(block_in))
            if level != self.num_levels - 1:
                stage.downsample = Downsample2d(block_in)
                res //= 2
            self.down.append(stage)
        self.mid = _MiddleBlock(block_in, dropout, attn_cls, style)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C_in, H, W) -> (N, out_channels, H / 2^(L-1), W / 2^(L-1)) (ceil)."""
        h = self.conv_in(x)
        for level, stage in enumerate(self.down):
            for i, block in enumerate(stage.block):
                h = _run_block(block, h, level < self.checkpoint_levels)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, 'downsample'):
                h = stage.downsample(h)
        h = self.norm_out(self.mid(h))
        return self.conv_out(F.silu(h) if self.style == 'taming' else F.relu(h))


class Decoder2d(nn.Module):
    """Mirror of :class:`Encoder2d`: conv_in, middle block, levels of ResNet blocks
    (+ attention) with nearest x2 upsampling + conv between levels, GroupNorm, SiLU,
    conv_out to ``out_channels`` (Z * E).

    Args: as :class:`Encoder2d` (taming style); ``in_channels`` is the latent width.
    """

    def __init__(self, in_channels: int, ch: int = 64, ch_mult: Sequence[int] = (1, 2, 4),
                 num_res_blocks: int = 2, attn_resolutions: Sequence[int] = (50,),
                 resolution: int = 200, out_channels: int = 128, dropout: float = 0.0,
                 checkpoint_levels: int = 0):
        super().__init__()
        self.checkpoint_levels = checkpoint_levels
        attn_cls = _attention_class('taming')
        self.num_levels = len(ch_mult)
        block_in = ch * ch_mult[-1]
        res = resolution // 2 ** (self.num_levels - 1)
        self.conv_in = nn.Conv2d(in_channels, block_in, 3, padding=1)
        self.mid = _MiddleBlock(block_in, dropout, attn_cls, 'taming')
        up = []
        for level in reversed(range(self.num_levels)):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                stage.block.append(ResnetBlock2d(block_in, ch * ch_mult[level], dropout))
                block_in = ch * ch_mult[level]
                if res in attn_resolutions:
                    stage.attn.append(attn_cls(block_in))
            if level != 0:
                stage.upsample = Upsample2d(block_in)
                res *= 2
            up.append(stage)
        self.up = nn.ModuleList(up[::-1])  # self.up[level], level 0 = full resolution
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    def forward(self, z: Tensor, out_size: Tuple[int, int]) -> Tensor:
        """z (N, C_z, h, w) -> (N, out_channels, *out_size)."""
        sizes = level_sizes(out_size, self.num_levels)
        if tuple(z.shape[-2:]) != sizes[-1]:
            raise ValueError(f'latent map {tuple(z.shape[-2:])} does not match output size '
                             f'{tuple(out_size)} (expected {sizes[-1]})')
        h = self.mid(self.conv_in(z))
        for level in reversed(range(self.num_levels)):
            stage = self.up[level]
            for i, block in enumerate(stage.block):
                h = _run_block(block, h, level < self.checkpoint_levels)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if level != 0:
                h = stage.upsample(h, sizes[level - 1])
        return self.conv_out(F.silu(self.norm_out(h)))


AXIAL_MODES = ('hw', 'reference')


def channel_axis_attention(attn: Attention, x: Tensor) -> Tensor:
    """The reference's ``axial_dim=-2`` attention of a 3D axial block run on a 2D map.

    x (N, H, W, C) channel-last. q, k, v = ``attn.qkv`` (no bias) split into heads of width
    d = C / heads: (N, heads, H, d, W); each of the d per-head channels is a token whose
    features are the W values of its row: softmax(q k^T / sqrt(W)) (d x d) @ v, back to
    (N, H, W, C), then ``attn.proj``. Returns (N, H, W, C).
    """
    N, H, W, C = x.shape
    heads = attn.num_heads
    d = C // heads
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias).view(N, H, W, 3, heads, d)
    q, k, v = qkv.permute(3, 0, 4, 1, 5, 2).unbind(0)  # 3 x (N, heads, H, d, W)
    weights = torch.softmax(q @ k.transpose(-1, -2) / W ** 0.5, dim=-1)  # (N, heads, H, d, d)
    out = (weights @ v).permute(0, 2, 4, 1, 3).reshape(N, H, W, C)  # (N, H, W, C)
    return attn.proj_drop(attn.proj(out))


class AxialAttnBlock2d(nn.Module):
    """GroupNorm then two axial self-attentions (summed), residual.

    UniScene's 50 x 50 attention: 2 heads, q / k / v without bias (VideoGPT style).

    ``axial_mode='hw'`` (default): ``attn_h`` attends along H, ``attn_w`` along W, as
    intended. ``axial_mode='reference'`` computes exactly what the reference's encoder
    computes (Arlo0o/UniScene @ e98413d, ``occupancy_gen/model_vae/VAE/vae_2d_resnet_DwT.py``
    ``AxialBlock_wh``): a VideoGPT axial block built for 3D inputs (``shape=(0,) * 3``,
    ``axial_dim=-2`` / ``-3``) run on (N, H, W, C) maps resolves its axes one position off:
    ``attn_h`` (axial_dim -3) attends along W and ``attn_w`` (axial_dim -2) along the
    per-head channel axis (:func:`channel_axis_attention`); nothing attends along H. Same
    parameters and keys in both modes; official checkpoints need 'reference'.
    """

    def __init__(self, channels: int, num_heads: int = 2, qkv_bias: bool = False,
                 axial_mode: str = 'hw'):
        super().__init__()
        if axial_mode not in AXIAL_MODES:
            raise ValueError(f'axial_mode must be one of {AXIAL_MODES}, got {axial_mode!r}')
        self.axial_mode = axial_mode
        self.norm = group_norm(channels)
        self.attn_h = Attention(channels, num_heads=num_heads, qkv_bias=qkv_bias)
        self.attn_w = Attention(channels, num_heads=num_heads, qkv_bias=qkv_bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C, H, W) -> (N, C, H, W)."""
        N, C, H, W = x.shape
        h = self.norm(x)
        rows = h.permute(0, 2, 3, 1).reshape(N * H, W, C)  # (N H, W, C)
        if self.axial_mode == 'reference':
            along_w = attend(self.attn_h, rows).view(N, H, W, C)
            along_c = channel_axis_attention(self.attn_w, rows.view(N, H, W, C))
            return x + (along_w + along_c).permute(0, 3, 1, 2)
        cols = h.permute(0, 3, 2, 1).reshape(N * W, H, C)  # (N W, H, C)
        out_w = attend(self.attn_w, rows).view(N, H, W, C)
        out_h = attend(self.attn_h, cols).view(N, W, H, C).transpose(1, 2)  # (N, H, W, C)
        return x + (out_w + out_h).permute(0, 3, 1, 2)


class _MiddleBlock(nn.Module):
    def __init__(self, channels: int, dropout: float, attn_cls, style: str):
        super().__init__()
        self.block_1 = ResnetBlock2d(channels, channels, dropout, style)
        self.attn_1 = attn_cls(channels)
        self.block_2 = ResnetBlock2d(channels, channels, dropout, style)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


def _attention_class(style: str, axial_mode: str = 'hw'):
    if style == 'taming':
        return AttnBlock2d
    if style == 'uniscene':
        if axial_mode not in AXIAL_MODES:
            raise ValueError(f'axial_mode must be one of {AXIAL_MODES}, got {axial_mode!r}')
        return partial(AxialAttnBlock2d, axial_mode=axial_mode)
    raise ValueError(f'encoder style must be "taming" or "uniscene", got {style!r}')
