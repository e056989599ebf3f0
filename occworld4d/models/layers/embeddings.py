"""Embeddings shared by the diffusion transformers: timesteps, fixed sin-cos tables, patches.

Axis names: B batch, N tokens, C channels / width, H, W the two axes of a 2D canvas.
"""
import math

import torch
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, cos half first.

    Args:
        t: (B,) timesteps.
        dim: output width.
        max_period: the slowest frequency's period.

    Returns:
        (B, dim) float32: ``[cos(t w_0..w_{h-1}), sin(t w_0..w_{h-1})]`` with
        ``w_i = max_period ** (-i / h)``, ``h = dim // 2`` (a zero column pads odd ``dim``).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2 half)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def sincos_1d(dim: int, positions: Tensor) -> Tensor:
    """Fixed 1D sin-cos table (MAE convention: sin half first, omega = 1 / 10000 ** (2i / dim)).

    Args:
        dim: even width.
        positions: (N,) positions.

    Returns:
        (N, dim) float64.
    """
    if dim % 2:
        raise ValueError(f'sincos_1d needs an even width, got {dim}')
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = positions.double().reshape(-1)[:, None] * omega[None]  # (N, dim / 2)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d(dim: int, height: int, width: int) -> Tensor:
    """Fixed 2D sin-cos table of a (height x width) token grid, row-major tokens.

    The first half of the channels encodes the column (W) index, the second half the
    row (H) index, as in DiT / MAE.

    Returns:
        (height * width, dim) float32.
    """
    if dim % 4:
        raise ValueError(f'sincos_2d needs a width divisible by 4, got {dim}')
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
    emb_w = sincos_1d(dim // 2, cols.reshape(-1))  # (H W, dim / 2)
    emb_h = sincos_1d(dim // 2, rows.reshape(-1))  # (H W, dim / 2)
    return torch.cat([emb_w, emb_h], dim=1).float()


class PatchEmbed2d(nn.Module):
    """Non-overlapping p x p patches of a 2D map -> tokens (a conv with kernel = stride = p).

    Args:
        in_channels: C_in of the map.
        embed_dim: token width C.
        patch_size: p; the map's H and W must be multiples of p.
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def reset_parameters(self) -> None:
        """Initialise like a Linear layer (xavier on the flattened kernel), zero bias."""
        w = self.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C_in, H, W) -> (B, H/p * W/p, C) tokens in row-major order."""
        p = self.patch_size
        if x.ndim != 4 or x.shape[-1] % p or x.shape[-2] % p:
            raise ValueError(f'PatchEmbed2d expects (B, C, H, W) with H, W multiples of {p}, '
                             f'got {tuple(x.shape)}')
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, C)
