"""HexPlane encoder of DynamicCity: voxel convolutions + the Projection Module.

Shapes: B batch, T frames, X, Y, Z voxels, C channels (C = 16 at every reference size).

Data flow (reference sizes, CarlaSC 16 x 128 x 128 x 8):

    voxels (B, T, X, Y, Z) -> Embedding -> (B*T, C, X, Y, Z)
      -> ``voxel_encoder``  -> spatial features  (B, C, T, X/2, Y/2, Z/2)
      -> ``time_encoder``   -> temporal features (B, C, T, X/2, Y/2, Z/2) (input: C + T one-hot)
    Projection Module (one reducer per output, see :data:`REDUCTIONS`):
      xyz <- spatial features reduced over t        (sequence length T = 16)
      xy  <- xyz reduced over z (4); xz over y (64); yz over x (64)
      tx  <- temporal features reduced over y, z (256); ty over x, z (256); tz over x, y (4096)
    time planes tx, ty, tz -> ``plane_downsamplers`` (Conv2d, kernel = stride = 2 on T)
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from occworld4d.models.layers import Attention
from occworld4d.models.layers.attention import scaled_dot_product

PLANES = ('xy', 'xz', 'yz', 'tx', 'ty', 'tz')
# output name -> (source, axes of the source, axes reduced). Sources: 'vol' = spatial
# features (t, x, y, z), 'xyz' = the T-reduced volume, 'tvol' = temporal features.
REDUCTIONS = {
    'xyz': ('vol', 'txyz', 't'),
    'xy': ('xyz', 'xyz', 'z'), 'xz': ('xyz', 'xyz', 'y'), 'yz': ('xyz', 'xyz', 'x'),
    'tx': ('tvol', 'txyz', 'yz'), 'ty': ('tvol', 'txyz', 'xz'), 'tz': ('tvol', 'txyz', 'xy'),
}


def _residual_block(channels: int) -> nn.Sequential:
    """conv3 - IN - LeakyReLU(0.1) - conv3 - IN (replicate padding); the caller adds the skip."""
    return nn.Sequential(
        nn.Conv3d(channels, channels, 3, padding=1, padding_mode='replicate'),
        nn.InstanceNorm3d(channels), nn.LeakyReLU(0.1, inplace=True),
        nn.Conv3d(channels, channels, 3, padding=1, padding_mode='replicate'),
        nn.InstanceNorm3d(channels))


class VoxelConvEncoder(nn.Module):
    """Per-frame 3D conv encoder (time folded into batch).

    conv3 (replicate) + residual block; then per downsampling level a kernel = stride = 2
    conv + IN and a residual block.

    Args:
        in_channels: input channels (C, or C + T for the time encoder).
        channels: output channels C.
        down: log2 downsampling per axis (x, y, z); (1, 1, 1) halves every axis.
        num_onehot: trailing input channels that hold a one-hot frame code (the time
            encoder). They are constant over space, so their contribution to the first conv
            is a per-frame bias, computed without materialising the (C + T)-channel input.
    """

    def __init__(self, in_channels: int, channels: int = 16, down: Sequence[int] = (1, 1, 1),
                 num_onehot: int = 0):
        super().__init__()
        self.num_onehot = num_onehot
        self.conv_in = nn.Conv3d(in_channels, channels, 3, padding=1, padding_mode='replicate')
        self.block_in = _residual_block(channels)
        self.downs = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for level in range(max(down, default=0)):
            k = tuple(2 if d > level else 1 for d in down)
            self.downs.append(nn.Sequential(nn.Conv3d(channels, channels, k, stride=k),
                                            nn.InstanceNorm3d(channels)))
            self.blocks.append(_residual_block(channels))

    def forward(self, x: Tensor, num_frames: int = 1) -> Tensor:
        """x: (B*T, C_in - num_onehot, X, Y, Z) -> (B*T, C, X', Y', Z')."""
        if self.num_onehot:
            c = x.shape[1]
            w = self.conv_in.weight
            x = F.conv3d(F.pad(x, (1,) * 6, mode='replicate'), w[:, :c], self.conv_in.bias)
            # One-hot frame code: conv over a constant map = sum of the kernel taps.
            frame_bias = w[:, c:].sum((2, 3, 4)).t()  # (T, C)
            x = x + frame_bias.repeat(x.shape[0] // num_frames, 1)[:, :, None, None, None]
        else:
            x = self.conv_in(x)
        x = x + self.block_in(x)
        for down, block in zip(self.downs, self.blocks):
            x = down(x)
            x = x + block(x)
        return x


class ProjectionTransformer(nn.Module):
    """Pre-LN transformer over the reduced axis, read out to one vector per sequence.

    Tokens: the L data tokens followed by one learnable token, plus a learnable positional
    encoding of length L + 1.

    Args:
        length: L, number of positions being reduced.
        dim, depth, num_heads, mlp_dim, dropout: transformer sizes (16, 2, 2, 32, 0.1);
            ``dropout`` acts after the attention projection and in the MLP.
        attn_drop: dropout on the attention weights (reference: = dropout). On CPU a
            non-zero value forces PyTorch's unfused attention (the full L x L weights are
            materialised and a Bernoulli mask drawn per weight), by far the slowest part of
            a CPU training step; on CUDA the fused kernels apply it at no extra memory.
        readout: 'faithful' reads the output at index 0 (the first data position) as the
            reference does although the token is appended last; 'token' reads the token.
        max_batch: sequences per attention call (larger inputs run in checkpointed chunks).
        unfused_budget: when attention-weight dropout forces the unfused CPU path, at most
            this many attention weights per checkpointed chunk (2**22 = 16 MB in fp32), so
            peak memory stays bounded (at the cost of one recomputed forward).
    """

    def __init__(self, length: int, dim: int = 16, depth: int = 2, num_heads: int = 2,
                 mlp_dim: int = 32, dropout: float = 0.1, readout: str = 'faithful',
                 max_batch: int = 32768, attn_drop: Optional[float] = None,
                 unfused_budget: int = 2 ** 22):
        super().__init__()
        self.unfused_budget = unfused_budget
        if readout not in ('faithful', 'token'):
            raise ValueError(f"projection_readout must be 'faithful' or 'token', got {readout!r}")
        self.length = length
        self.readout = readout
        self.max_batch = max_batch
        self.token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, length + 1, dim))
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(nn.ModuleDict(dict(
                norm1=nn.LayerNorm(dim),
                attn=Attention(dim, num_heads, qkv_bias=False,
                               attn_drop=dropout if attn_drop is None else attn_drop,
                               proj_drop=dropout),
                norm2=nn.LayerNorm(dim),
                mlp=nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(mlp_dim, dim), nn.Dropout(dropout)))))

    @staticmethod
    def _attend_one(attn: Attention, h: Tensor, r: int) -> Tensor:
        """Self-attention output at position ``r`` only: h (N, L, C) -> (N, 1, C).

        Same weights and function as ``attn(h)[:, r:r + 1]`` but one query instead of L, so
        the cost is O(L) instead of O(L^2).
        """
        N, L, C = h.shape
        H = attn.num_heads
        w, b = attn.qkv.weight, attn.qkv.bias  # (3C, C), (3C,) or None
        q = F.linear(h[:, r:r + 1], w[:C], None if b is None else b[:C])  # (N, 1, C)
        q = q.view(N, 1, H, C // H).transpose(1, 2)  # (N, H, 1, D)
        kv = F.linear(h, w[C:], None if b is None else b[C:])  # (N, L, 2C)
        k, v = kv.view(N, L, 2, H, C // H).permute(2, 0, 3, 1, 4)  # 2 x (N, H, L, D)
        out = scaled_dot_product(q, k, v, dropout_p=attn.attn_drop if attn.training else 0.0,
                                 backend=attn.backend)  # (N, H, 1, D)
        return attn.proj_drop(attn.proj(out.transpose(1, 2).reshape(N, 1, C)))

    def _run(self, x: Tensor) -> Tensor:
        """x: (N, L, C) -> (N, C).

        Only one output position is read, so the last layer evaluates its attention query
        and MLP at that position only (exactly the same result as the full last layer).
        """
        if x.shape[1] != self.length:
            raise ValueError(f'projection transformer built for length {self.length}, '
                             f'got sequences of length {x.shape[1]}')
        x = torch.cat([x, self.token.expand(x.shape[0], -1, -1)], 1) + self.pos_embed
        r = 0 if self.readout == 'faithful' else self.length  # read-out position
        for layer in self.layers[:-1]:
            x = x + layer['attn'](layer['norm1'](x))
            x = x + layer['mlp'](layer['norm2'](x))
        last = self.layers[-1]
        y = x[:, r:r + 1] + self._attend_one(last['attn'], last['norm1'](x), r)  # (N, 1, C)
        y = y + last['mlp'](last['norm2'](y))
        return y[:, 0]

    def _chunk_size(self, x: Tensor) -> int:
        """Sequences per call: ``max_batch``, and on CPU with attention-weight dropout in
        training (unfused attention, (N, H, L, L) weights materialised) at most
        ``unfused_budget`` attention weights per checkpointed chunk."""
        attn = self.layers[0]['attn']
        if self.training and attn.attn_drop > 0 and not x.is_cuda:
            per_seq = attn.num_heads * (x.shape[1] + 1) ** 2
            return max(1, min(self.max_batch, self.unfused_budget // per_seq))
        return self.max_batch

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, L, C) sequences -> (N, C) one vector per sequence."""
        size = self._chunk_size(x)
        if x.shape[0] <= size:
            return self._run(x)
        outs = []
        for chunk in x.split(size):
            if torch.is_grad_enabled():
                outs.append(checkpoint(self._run, chunk, use_reentrant=False))
            else:
                outs.append(self._run(chunk))
        return torch.cat(outs)


def _to_sequences(x: Tensor, axes: str, reduce: str) -> Tuple[Tensor, Tuple[int, ...]]:
    """(B, C, *axes) -> ((B * kept), L = prod(reduced), C) and the kept sizes."""
    kept = [a for a in axes if a not in reduce]
    order = [0] + [2 + axes.index(a) for a in kept] + [2 + axes.index(a) for a in reduce] + [1]
    x = x.permute(order)  # (B, *kept, *reduced, C)
    kept_sizes = tuple(x.shape[1:1 + len(kept)])
    return x.reshape(-1, math.prod(x.shape[1 + len(kept):-1]), x.shape[-1]), kept_sizes


class HexPlaneEncoder(nn.Module):
    """Voxels -> six feature planes (before the VAE heads).

    Args:
        num_classes: K, size of the class embedding.
        num_frames: T of the input window (sets the one-hot time code and sequence lengths).
        spatial_size: (X, Y, Z) of the input grid.
        channels: C.
        voxel_down: log2 downsampling of the voxel encoders per axis (x, y, z).
        plane_down: log2 downsampling of the planes per axis (t, x, y, z) (conv, kernel =
            stride); reference CarlaSC: (1, 0, 0, 0) = only T halves on the time planes.
        projection: 'transformer' (Projection Module) or 'avgpool' (ablation baseline).
        projection_readout: see :class:`ProjectionTransformer`.
        depth, num_heads, mlp_dim, dropout: projection transformer sizes.
        max_batch, attn_drop: see :class:`ProjectionTransformer`.
    """

    def __init__(self, num_classes: int, num_frames: int, spatial_size: Sequence[int],
                 channels: int = 16, voxel_down: Sequence[int] = (1, 1, 1),
                 plane_down: Sequence[int] = (1, 0, 0, 0), projection: str = 'transformer',
                 projection_readout: str = 'faithful', depth: int = 2, num_heads: int = 2,
                 mlp_dim: int = 32, dropout: float = 0.1, max_batch: int = 32768,
                 attn_drop: Optional[float] = None):
        super().__init__()
        if projection not in ('transformer', 'avgpool'):
            raise ValueError(f"projection must be 'transformer' or 'avgpool', got {projection!r}")
        X, Y, Z = spatial_size
        vx, vy, vz = voxel_down
        for name, size, d in (('X', X, vx), ('Y', Y, vy), ('Z', Z, vz)):
            if size % (2 ** d):
                raise ValueError(f'spatial size {name}={size} is not divisible by the voxel '
                                 f'downsampling 2**{d}')
        self.num_frames = num_frames
        self.projection = projection
        self.embedding = nn.Embedding(num_classes, channels)
        self.voxel_encoder = VoxelConvEncoder(channels, channels, voxel_down)
        self.time_encoder = VoxelConvEncoder(channels + num_frames, channels, voxel_down,
                                             num_onehot=num_frames)
        sizes = dict(t=num_frames, x=X >> vx, y=Y >> vy, z=Z >> vz)
        self.reducers = nn.ModuleDict()
        self.convs = nn.ModuleDict()
        for name, (_, _, reduce) in REDUCTIONS.items():
            if projection == 'transformer':
                self.reducers[name] = ProjectionTransformer(
                    math.prod(sizes[a] for a in reduce), channels, depth, num_heads, mlp_dim,
                    dropout, projection_readout, max_batch, attn_drop)
            conv = nn.Conv3d if len(name) == 3 else nn.Conv2d
            self.convs[name] = nn.Sequential(conv(channels, channels, 1), nn.Tanh(),
                                             conv(channels, channels, 1))
        self.plane_downsamplers = nn.ModuleDict()
        pd = dict(zip('txyz', plane_down))
        for name in PLANES:
            layers = []
            steps = max(pd[name[0]], pd[name[1]])
            for level in range(steps):
                k = (2 if pd[name[0]] > level else 1, 2 if pd[name[1]] > level else 1)
                layers.append(nn.Conv2d(channels, channels, k, stride=k))
                if level < steps - 1:
                    layers.append(nn.LeakyReLU(0.1, inplace=True))
            self.plane_downsamplers[name] = nn.Sequential(*layers)

    def _reduce(self, name: str, src: Tensor) -> Tensor:
        """Apply one reduction of :data:`REDUCTIONS`: (B, C, *axes) -> (B, C, *kept)."""
        _, axes, reduce = REDUCTIONS[name]
        if self.projection == 'avgpool':
            out = src.mean([2 + axes.index(a) for a in reduce])
        else:
            seq, kept = _to_sequences(src, axes, reduce)  # (B*kept, L, C)
            out = self.reducers[name](seq)  # (B*kept, C)
            out = out.view(src.shape[0], *kept, -1).movedim(-1, 1)  # (B, C, *kept)
        return self.convs[name](out)

    def forward(self, voxels: Tensor) -> Dict[str, Tensor]:
        """voxels: (B, T, X, Y, Z) int64 -> dict of six planes (B, C, a', b')."""
        B, T = voxels.shape[:2]
        if T != self.num_frames:
            raise ValueError(f'HexPlane encoder built for {self.num_frames} frames, got {T}')
        x = self.embedding(voxels.flatten(0, 1))  # (B*T, X, Y, Z, C)
        x = x.permute(0, 4, 1, 2, 3).contiguous()  # (B*T, C, X, Y, Z)
        tvol = self.time_encoder(x, num_frames=T)  # (B*T, C, X', Y', Z')
        vol = self.voxel_encoder(x)  # (B*T, C, X', Y', Z')
        del x
        vol = vol.view(B, T, *vol.shape[1:]).transpose(1, 2)  # (B, C, T, X', Y', Z')
        tvol = tvol.view(B, T, *tvol.shape[1:]).transpose(1, 2)  # (B, C, T, X', Y', Z')
        xyz = self._reduce('xyz', vol)  # (B, C, X', Y', Z')
        planes = dict(xy=self._reduce('xy', xyz), xz=self._reduce('xz', xyz),
                      yz=self._reduce('yz', xyz), tx=self._reduce('tx', tvol),
                      ty=self._reduce('ty', tvol), tz=self._reduce('tz', tvol))
        return {k: self.plane_downsamplers[k](v) for k, v in planes.items()}
