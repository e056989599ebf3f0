"""HexPlane decoders of DynamicCity: Expansion & Squeeze (default) and the per-point query MLP.

Shapes: B batch, T frames, X, Y, Z voxels, C latent channels (16), Q query channels (64),
K classes. Plane order: xy, xz, yz, tx, ty, tz (see :data:`PLANES`).

Expansion & Squeeze (reference CarlaSC sizes):

    planes (B, 16, a, b) -> PlaneConvBlock -> (B, 64, a, b)
      -> per-plane upsampler (ConvTranspose2d k = s = 2**plane_down: T x2 on time planes)
      -> expansion: broadcast to (B*T, 64, X/2, Y/2, Z/2), fused by Hadamard product (or sum)
      -> squeeze: 1x1x1 conv 64 -> 128 + LReLU, residual 3x3x3 block, residual 1x1x1 block
      -> ConvTranspose3d 128 -> 32 (k = s = 2), concat sin/cos (t, x, y, z) code (24 ch)
      -> 1x1 conv 56 -> K, IN, LReLU, 1x1 conv K -> K   = logits (B, K, T, X, Y, Z)

Memory-lean evaluation (same parameters, same function up to float rounding):
- the expansion multiplies the three spatial planes once (shared by all frames) and the
  three time planes per frame, never materialising six broadcast copies;
- ConvTranspose3d 128 -> 32 and the 32-channel part of the following 1x1 conv are both
  linear with nothing in between, so they run as ONE transposed conv 128 -> K whose weight is
  composed on the fly (no 32- or 56-channel full-resolution tensor); the 24-channel
  positional code only adds a constant map (W_pe @ code), computed once per shape;
- with ``frame_chunk`` the per-frame part (expansion .. logits) runs over chunks of frames
  under activation checkpointing (trades a re-computation for memory).
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .encoder import PLANES


def sinusoidal_coords(T: int, X: int, Y: int, Z: int, num_freq: int = 3,
                      device=None, dtype=torch.float32) -> Tensor:
    """Sin/cos code of integer (t, x, y, z) coordinates.

    Channel order: for f in 0..num_freq-1: sin(2**f * (t, x, y, z)), cos(2**f * (t, x, y, z)).

    Returns:
        (8 * num_freq, T, X, Y, Z).
    """
    axes = [torch.arange(n, device=device, dtype=torch.float32) for n in (T, X, Y, Z)]
    coords = torch.stack(torch.meshgrid(*axes, indexing='ij'))  # (4, T, X, Y, Z)
    feats = []
    for f in range(num_freq):
        feats += [torch.sin(coords * 2.0 ** f), torch.cos(coords * 2.0 ** f)]
    return torch.cat(feats).to(dtype)  # (8 * num_freq, T, X, Y, Z)


class PlaneConvBlock(nn.Module):
    """Per-plane residual block C -> Q: conv3, IN, SiLU, zero-initialised conv3, + 1x1 shortcut.

    The reference runs the three spatial and the three time planes as two grouped convs
    (groups = 3 planes) on zero-padded canvases; per-plane convs are the same function with
    the same parameter count and skip the padding.
    """

    def __init__(self, in_channels: int = 16, out_channels: int = 64):
        super().__init__()
        self.in_convs = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        self.out_convs = nn.ModuleDict()
        self.shortcuts = nn.ModuleDict()
        for p in PLANES:
            self.in_convs[p] = nn.Conv2d(in_channels, out_channels, 3, padding=1)
            self.norms[p] = nn.InstanceNorm2d(out_channels, eps=1e-6, affine=True)
            self.out_convs[p] = nn.Conv2d(out_channels, out_channels, 3, padding=1)
            nn.init.zeros_(self.out_convs[p].weight)
            nn.init.zeros_(self.out_convs[p].bias)
            self.shortcuts[p] = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, planes: Dict[str, Tensor]) -> Dict[str, Tensor]:
        out = {}
        for p in PLANES:
            h = F.silu(self.norms[p](self.in_convs[p](planes[p])))
            out[p] = self.out_convs[p](h) + self.shortcuts[p](planes[p])
        return out


class PlaneUpsampler(nn.Module):
    """ConvTranspose2d (k = s = 2**up per axis), IN, LReLU(0.1), conv3, IN, LReLU(0.1)."""

    def __init__(self, channels: int = 64, up: Sequence[int] = (0, 0)):
        super().__init__()
        k = tuple(2 ** u for u in up)
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(channels, channels, k, stride=k),
            nn.InstanceNorm2d(channels), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.InstanceNorm2d(channels), nn.LeakyReLU(0.1, inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def expand_planes(planes: Dict[str, Tensor], fusion: str = 'hadamard',
                  frames: Optional[slice] = None) -> Tensor:
    """Broadcast the six planes to a dense volume and fuse them.

    Args:
        planes: xy (B, Q, X, Y), xz (B, Q, X, Z), yz (B, Q, Y, Z), tx (B, Q, T, X),
            ty (B, Q, T, Y), tz (B, Q, T, Z) at matching resolutions.
        fusion: 'hadamard' (product) or 'sum'.
        frames: the frames to expand (default all).

    Returns:
        (B * T_sel, Q, X, Y, Z), frames folded into batch.
    """
    xy, xz, yz = planes['xy'], planes['xz'], planes['yz']
    tx, ty, tz = (planes[k] if frames is None else planes[k][:, :, frames]
                  for k in ('tx', 'ty', 'tz'))
    B, Q, X, Y = xy.shape
    T, Z = tz.shape[2], tz.shape[3]
    if fusion == 'hadamard':
        space = xy[..., None] * xz[:, :, :, None] * yz[:, :, None]  # (B, Q, X, Y, Z)
        time = tx[..., None] * ty[:, :, :, None]  # (B, Q, T, X, Y)
        vol = space[:, :, None] * time[..., None]  # (B, Q, T, X, Y, Z)
        vol = vol * tz[:, :, :, None, None]
    elif fusion == 'sum':
        space = xy[..., None] + xz[:, :, :, None] + yz[:, :, None]  # (B, Q, X, Y, Z)
        time = tx[..., None] + ty[:, :, :, None]  # (B, Q, T, X, Y)
        vol = space[:, :, None] + time[..., None]  # (B, Q, T, X, Y, Z)
        vol = vol + tz[:, :, :, None, None]
    else:
        raise ValueError(f"fusion must be 'hadamard' or 'sum', got {fusion!r}")
    return vol.transpose(1, 2).reshape(B * T, Q, X, Y, Z)  # (B*T, Q, X, Y, Z)


class _PlaneFrontEnd(nn.Module):
    """PlaneConvBlock + per-plane upsamplers shared by both decoders."""

    def __init__(self, latent_channels: int, query_channels: int, plane_down: Sequence[int]):
        super().__init__()
        self.conv_block = PlaneConvBlock(latent_channels, query_channels)
        pd = dict(zip('txyz', plane_down))
        self.upsamplers = nn.ModuleDict(
            {p: PlaneUpsampler(query_channels, (pd[p[0]], pd[p[1]])) for p in PLANES})

    def planes(self, planes: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Latent planes (B, C, a, b) -> query-channel planes at voxel-encoder resolution."""
        missing = [p for p in PLANES if p not in planes]
        if missing:
            raise KeyError(f'HexPlane decoder expects planes {PLANES}; missing {missing}')
        feats = self.conv_block(planes)
        return {p: self.upsamplers[p](feats[p]) for p in PLANES}


class ExpansionSqueezeDecoder(_PlaneFrontEnd):
    """DynamicCity's Expansion & Squeeze decoder (see the module docstring).

    Args:
        num_classes: K.
        latent_channels: C of the planes (16).
        query_channels: Q after the plane conv block (64).
        hidden_channels: width of the squeeze convs (128).
        high_res_channels: output width of the ConvTranspose3d (32).
        voxel_down: log2 (x, y, z) factors undone by the ConvTranspose3d.
        plane_down: log2 (t, x, y, z) factors undone by the plane upsamplers.
        num_freq: frequencies of the (t, x, y, z) code (3 -> 24 channels).
        fusion: 'hadamard' or 'sum'.
        frame_chunk: frames per checkpointed chunk in training (None = all at once).
    """

    def __init__(self, num_classes: int, latent_channels: int = 16, query_channels: int = 64,
                 hidden_channels: int = 128, high_res_channels: int = 32,
                 voxel_down: Sequence[int] = (1, 1, 1), plane_down: Sequence[int] = (1, 0, 0, 0),
                 num_freq: int = 3, fusion: str = 'hadamard', frame_chunk: Optional[int] = None):
        super().__init__(latent_channels, query_channels, plane_down)
        if fusion not in ('hadamard', 'sum'):
            raise ValueError(f"fusion must be 'hadamard' or 'sum', got {fusion!r}")
        self.fusion = fusion
        self.frame_chunk = frame_chunk
        self.num_freq = num_freq
        self.high_res_channels = high_res_channels
        H = hidden_channels
        self.conv_in = nn.Conv3d(query_channels, H, 1)
        self.block3 = nn.Sequential(
            nn.Conv3d(H, H, 3, padding=1), nn.InstanceNorm3d(H), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv3d(H, H, 3, padding=1), nn.InstanceNorm3d(H), nn.LeakyReLU(0.1, inplace=True))
        self.block1 = nn.Sequential(
            nn.Conv3d(H, H, 1), nn.InstanceNorm3d(H), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv3d(H, H, 1), nn.InstanceNorm3d(H), nn.LeakyReLU(0.1, inplace=True))
        k = tuple(2 ** d for d in voxel_down)
        self.up = nn.ConvTranspose3d(H, high_res_channels, k, stride=k)
        self.head_in = nn.Conv3d(high_res_channels + 8 * num_freq, num_classes, 1)
        self.head_norm = nn.InstanceNorm3d(num_classes)
        self.head_out = nn.Conv3d(num_classes, num_classes, 1)
        self._pe_cache = {}

    def _pe_logits(self, T: int, X: int, Y: int, Z: int, ref: Tensor) -> Tensor:
        """Contribution of the positional code to ``head_in``: (K, T, X, Y, Z)."""
        key = (T, X, Y, Z, ref.device, ref.dtype)
        code = self._pe_cache.get(key)
        if code is None:
            code = sinusoidal_coords(T, X, Y, Z, self.num_freq, ref.device, ref.dtype)
            self._pe_cache = {key: code}
        w = self.head_in.weight[:, self.high_res_channels:, 0, 0, 0]  # (K, 24)
        return torch.einsum('kc,c...->k...', w.to(code.dtype), code)  # (K, T, X, Y, Z)

    def _frames(self, planes: Dict[str, Tensor], t0: int, t1: int, T_total: int) -> Tensor:
        """Logits of frames [t0, t1): (B, K, t1 - t0, X, Y, Z)."""
        B = planes['xy'].shape[0]
        vol = expand_planes(planes, self.fusion, slice(t0, t1))  # (B*Tc, Q, X', Y', Z')
        h = F.leaky_relu(self.conv_in(vol), 0.1)  # (B*Tc, H, X', Y', Z')
        del vol
        h = h + self.block3(h)
        h = h + self.block1(h)
        # ConvTranspose3d(H -> 32) followed by the 32-channel part of head_in (1x1): fused.
        w_hi = self.head_in.weight[:, :self.high_res_channels, 0, 0, 0]  # (K, 32)
        w_up = torch.einsum('icxyz,kc->ikxyz', self.up.weight, w_hi)  # (H, K, kx, ky, kz)
        b_up = w_hi @ self.up.bias + self.head_in.bias  # (K,)
        logits = F.conv_transpose3d(h, w_up.to(h.dtype), b_up.to(h.dtype),
                                    stride=self.up.stride)  # (B*Tc, K, X, Y, Z)
        Tc = t1 - t0
        X, Y, Z = logits.shape[2:]
        pe = self._pe_logits(T_total, X, Y, Z, logits)[:, t0:t1]  # (K, Tc, X, Y, Z)
        logits = logits.view(B, Tc, *logits.shape[1:]) + pe.transpose(0, 1)
        logits = logits.flatten(0, 1)  # (B*Tc, K, X, Y, Z)
        logits = self.head_out(F.leaky_relu(self.head_norm(logits), 0.1))
        return logits.view(B, Tc, *logits.shape[1:]).transpose(1, 2)  # (B, K, Tc, X, Y, Z)

    def forward(self, planes: Dict[str, Tensor]) -> Tensor:
        """Latent planes -> logits (B, K, T, X, Y, Z)."""
        feats = self.planes(planes)
        T = feats['tx'].shape[2]
        chunk = self.frame_chunk
        if not chunk or chunk >= T:
            return self._frames(feats, 0, T, T)
        outs = []
        for t0 in range(0, T, chunk):
            t1 = min(T, t0 + chunk)
            if torch.is_grad_enabled():
                outs.append(checkpoint(self._frames, feats, t0, t1, T, use_reentrant=False))
            else:
                outs.append(self._frames(feats, t0, t1, T))
        return torch.cat(outs, 2)


class QueryDecoder(_PlaneFrontEnd):
    """Ablation baseline: an MLP evaluated per 3D point on features sampled from the planes.

    The planes (after the shared conv block and upsamplers) are bilinearly sampled at every
    output voxel centre (separable, so sampling a plane at all voxel centres is a bilinear
    resize of that plane), fused by product or sum, concatenated with the (t, x, y, z) code
    and mapped to logits by a point-wise MLP (``num_layers`` hidden layers of width
    ``hidden_channels``, ReLU; the reference config names 256 x 4).
    """

    def __init__(self, num_classes: int, latent_channels: int = 16, query_channels: int = 64,
                 hidden_channels: int = 256, num_layers: int = 4,
                 voxel_down: Sequence[int] = (1, 1, 1), plane_down: Sequence[int] = (1, 0, 0, 0),
                 num_freq: int = 3, fusion: str = 'hadamard'):
        super().__init__(latent_channels, query_channels, plane_down)
        if fusion not in ('hadamard', 'sum'):
            raise ValueError(f"fusion must be 'hadamard' or 'sum', got {fusion!r}")
        self.fusion = fusion
        self.num_freq = num_freq
        self.voxel_down = tuple(voxel_down)
        layers: List[nn.Module] = []
        width = query_channels + 8 * num_freq
        for _ in range(num_layers):
            layers += [nn.Conv3d(width, hidden_channels, 1), nn.ReLU(inplace=True)]
            width = hidden_channels
        layers.append(nn.Conv3d(width, num_classes, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, planes: Dict[str, Tensor]) -> Tensor:
        """Latent planes -> logits (B, K, T, X, Y, Z)."""
        feats = self.planes(planes)
        B = feats['xy'].shape[0]
        fx, fy, fz = (2 ** d for d in self.voxel_down)
        X, Y = feats['xy'].shape[2] * fx, feats['xy'].shape[3] * fy
        Z, T = feats['xz'].shape[3] * fz, feats['tx'].shape[2]
        size = dict(t=T, x=X, y=Y, z=Z)
        up = {p: F.interpolate(f, size=(size[p[0]], size[p[1]]), mode='bilinear',
                               align_corners=False) for p, f in feats.items()}
        vol = expand_planes(up, self.fusion)  # (B*T, Q, X, Y, Z)
        code = sinusoidal_coords(T, X, Y, Z, self.num_freq, vol.device, vol.dtype)
        code = code.transpose(0, 1).repeat(B, 1, 1, 1, 1)  # (B*T, 24, X, Y, Z)
        logits = self.mlp(torch.cat([vol, code], 1))  # (B*T, K, X, Y, Z)
        return logits.view(B, T, *logits.shape[1:]).transpose(1, 2)  # (B, K, T, X, Y, Z)
