"""OccWorld's world model: a U-Net over token maps with causal temporal attention and an ego branch.

Two streams run through the same weights (reference: wzzheng/OccWorld ``PlanUAutoRegTransformer``):

* the **context** stream: the scene tokens of every frame, processed frame by frame (U-Net
  blocks and MLPs only, no temporal mixing). At every attention layer its features give the
  keys and values;
* the **query** stream: the same tokens with the *next* frame's temporal embedding; at the
  50 x 50 and 25 x 25 levels (encoder and decoder) every token cross-attends over time to the
  context tokens at its position, causally (the query of frame t sees context frames 0..t),
  and its output at frame t gives the 512-way code logits of frame t + 1.

The ego branch mirrors this on one pose token a frame: causal temporal attention from pose
queries to pose context, then cross-attention from the pose query to the scene queries of
the same frame, FFN; MLPs between levels; the output feeds the trajectory decoder.

Because the context stream never mixes frames and each query only reads the context, the
keys / values of past frames never change: :meth:`OccWorldTransformer.step` keeps them in a
:class:`KVCache` and computes, for each new frame, the context stream of that frame only and
the query stream of the last frame only. :meth:`OccWorldTransformer.forward` computes both
streams over all frames (teacher forcing, and the uncached rollout that recomputes the
history each step).

Reference size (Occ3D-nuScenes, 128 x 50 x 50 tokens, channels (128, 256, 512), 6 temporal
and 2 pose layers a level, 8 heads, 15 frames): 58,182,740 parameters; with the pose encoder
(17,280) and decoder (17,286): 58,217,306.

Shapes: B batch, F frames, C channels, h, w token map, K codes, N = B h w sequences.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.models.denoisers.dit import Mlp
from occworld4d.models.layers.attention import Attention, scaled_dot_product
from occworld4d.registry import MODELS


# --------------------------------------------------------------------------------------
# Attention split into key/value projection and query attention (for the KV cache).
# --------------------------------------------------------------------------------------
def project_kv(attn: Attention, context: Tensor) -> Tuple[Tensor, Tensor]:
    """Keys and values of a cross-attention layer.

    Args:
        attn: an :class:`Attention` built with ``context_dim``.
        context: (N, M, C_ctx).

    Returns:
        k, v: (N, H, M, D) each.
    """
    N, M, _ = context.shape
    H = attn.num_heads
    kv = attn.kv(context).view(N, M, 2, H, -1)  # (N, M, 2, H, D)
    k, v = kv.permute(2, 0, 3, 1, 4)  # 2 x (N, H, M, D)
    return k, v


def attend_kv(attn: Attention, x: Tensor, k: Tensor, v: Tensor, causal: bool) -> Tensor:
    """``attn(x, context)`` with precomputed keys / values.

    Args:
        x: (N, L, C) queries; with ``causal`` they are the last L of the M key positions
            (query i sees keys 0 .. M - L + i).
        k, v: (N, H, M, D).

    Returns:
        (N, L, C).
    """
    N, L, C = x.shape
    H = attn.num_heads
    q = attn.q(x).view(N, L, H, C // H).transpose(1, 2)  # (N, H, L, D)
    out = scaled_dot_product(q, k, v, causal=causal and L > 1,
                             dropout_p=attn.attn_drop if attn.training else 0.0,
                             backend=attn.backend)
    out = out.transpose(1, 2).reshape(N, L, C)  # (N, L, C)
    return attn.proj_drop(attn.proj(out))


class KVCache:
    """Keys and values of the context stream of every frame seen so far.

    ``store[name] = (k, v)``, each (N, H, capacity, D), allocated on the first
    :meth:`extend` of ``name`` and filled frame by frame (no copy of the past per step);
    ``length`` = frames cached (advanced by the transformer after each call).

    Args:
        capacity: most frames a roll-out caches (the transformer's ``num_frames``).
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.store: Dict[str, Tuple[Tensor, Tensor]] = {}
        self.length = 0

    def extend(self, name: str, k: Tensor, v: Tensor) -> Tuple[Tensor, Tensor]:
        """Write the new frames' (k, v) (N, H, n, D) after the cached ones under ``name``;
        return views of all frames' (k, v) (N, H, length + n, D)."""
        start, n = self.length, k.shape[2]
        if start + n > self.capacity:
            raise ValueError(f'KVCache: {start} cached + {n} new frames exceed the capacity '
                             f'{self.capacity}')
        if name not in self.store:
            N, H, _, D = k.shape
            self.store[name] = (k.new_empty(N, H, self.capacity, D),
                                v.new_empty(N, H, self.capacity, D))
        K, V = self.store[name]
        K[:, :, start:start + n] = k
        V[:, :, start:start + n] = v
        return K[:, :, :start + n], V[:, :, :start + n]

    def nbytes(self) -> int:
        """Bytes of the frames cached so far."""
        return sum(2 * k[:, :, :self.length].numel() * k.element_size()
                   for k, _ in self.store.values())


def _keys_values(attn: Attention, context: Tensor, cache: Optional[KVCache],
                 name: str) -> Tuple[Tensor, Tensor]:
    k, v = project_kv(attn, context)
    if cache is not None:
        k, v = cache.extend(name, k, v)
    return k, v


# --------------------------------------------------------------------------------------
# Layers.
# --------------------------------------------------------------------------------------
class UNetBlock(nn.Module):
    """LayerNorm over ``norm_shape`` -> conv3x3 -> ReLU -> conv3x3, + shortcut, -> ReLU.

    The reference normalises over (h, w) in the encoder and over (C, h, w) in the middle
    and decoder blocks (elementwise affine over that whole shape), so the norm's size is
    tied to the token map.
    """

    def __init__(self, norm_shape: Sequence[int], in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(tuple(norm_shape))
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = (nn.Identity() if in_channels == out_channels
                         else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, h, w) -> (N, C_out, h, w)."""
        h = self.conv2(F.relu(self.conv1(self.norm(x))))
        return F.relu(h + self.shortcut(x))


class TemporalLayer(nn.Module):
    """Post-norm causal cross-attention over time to the context, then an FFN (4x;
    ``mlp_act``: see :func:`occworld4d.models.denoisers.dit.build_mlp_activation`)."""

    def __init__(self, dim: int, num_heads: int, mlp_act: str = 'gelu_tanh'):
        super().__init__()
        self.attn = Attention(dim, num_heads, context_dim=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = Mlp(dim, 4 * dim, mlp_act)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """x: (N, L, C) queries of the last L frames; k, v: (N, H, M, D) -> (N, L, C)."""
        x = self.norm1(x + attend_kv(self.attn, x, k, v, causal=True))
        return self.norm2(x + self.ffn(x))


class PoseLayer(nn.Module):
    """Ego query: causal attention to the pose context over time, cross-attention to the
    scene queries of its own frame, FFN (post-norm each)."""

    def __init__(self, dim: int, num_heads: int, mlp_act: str = 'gelu_tanh'):
        super().__init__()
        self.temporal = Attention(dim, num_heads, context_dim=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.spatial = Attention(dim, num_heads, context_dim=dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = Mlp(dim, 4 * dim, mlp_act)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, p: Tensor, k: Tensor, v: Tensor, scene: Tensor) -> Tensor:
        """p: (B, L, C) pose queries; k, v: (B, H, M, D); scene: (B L, h w, C) -> (B, L, C)."""
        B, L, C = p.shape
        p = self.norm1(p + attend_kv(self.temporal, p, k, v, causal=True))
        p = p.reshape(B * L, 1, C)  # (B L, 1, C)
        p = self.norm2(p + self.spatial(p, context=scene))
        p = self.norm3(p + self.ffn(p))
        return p.view(B, L, C)


def _mlp2(cin: int, cout: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear -> ReLU (the pose path between levels)."""
    return nn.Sequential(nn.Linear(cin, cout), nn.ReLU(), nn.Linear(cout, cout), nn.ReLU())


def _pad_to(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """Zero-pad (N, C, h, w) to (N, C, *size), split evenly (12 -> 24 upsampled -> 25)."""
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


def _to_seq(x: Tensor, B: int) -> Tensor:
    """(B F, C, h, w) -> (B h w, F, C) time sequences per token position."""
    BF, C, h, w = x.shape
    return x.view(B, BF // B, C, h * w).permute(0, 3, 1, 2).reshape(B * h * w, BF // B, C)


def _from_seq(x: Tensor, B: int, h: int, w: int) -> Tensor:
    """(B h w, F, C) -> (B F, C, h, w)."""
    N, Fr, C = x.shape
    return x.view(B, h * w, Fr, C).permute(0, 2, 3, 1).reshape(B * Fr, C, h, w)


def _to_tokens(x: Tensor) -> Tensor:
    """(B F, C, h, w) -> (B F, h w, C) spatial tokens of each frame."""
    return x.flatten(2).transpose(1, 2)


# --------------------------------------------------------------------------------------
# The world model.
# --------------------------------------------------------------------------------------
@MODELS.register_module()
class OccWorldTransformer(nn.Module):
    """U-Net world model over per-frame token maps with a pose (ego) branch.

    Args:
        token_shape: (C, h, w) of a frame's token map (128, 50, 50); C is the code width.
        channels: widths of the U-Net levels ((128, 256, 512)); every level but the last has
            temporal attention at its input in the encoder and at its (concatenated) width in
            the decoder.
        num_frames: longest context (15); sets the temporal embedding tables (num_frames + 1).
        num_codes: K, codebook size (512): the output logits.
        temporal_layers: causal temporal-attention layers at each attention level (6).
        pose_layers: pose attention layers at each attention level (2).
        pose_dim: width of the pose tokens (128; must equal C).
        pose_out_dim: width of the pose output fed to the trajectory decoder (128).
        num_heads: attention heads (8).
        mlp_act: activation of every FFN: ``'gelu_tanh'`` (default: the tanh approximation,
            what checkpoints trained here before this switch used) or ``'gelu'`` (exact GELU,
            the reference's ``nn.GELU()``; the configs that load the released OccWorld
            checkpoint set it). No parameter depends on it.

    Attribute ``ego_queries`` (default False, the reference: the scene never reads the ego
    branch): add each query frame's pose token to its scene query at the input, so that the
    codes predicted for frame t + 1 see what the pose token of frame t carries
    (``OccWorld(future_ego='given')`` sets it: the step to frame t + 1). No parameters; the
    context stream, and so the KV cache, is unchanged.
    """

    def __init__(self, token_shape: Sequence[int] = (128, 50, 50),
                 channels: Sequence[int] = (128, 256, 512), num_frames: int = 15,
                 num_codes: int = 512, temporal_layers: int = 6, pose_layers: int = 2,
                 pose_dim: int = 128, pose_out_dim: int = 128, num_heads: int = 8,
                 mlp_act: str = 'gelu_tanh'):
        super().__init__()
        C, h, w = (int(s) for s in token_shape)
        if pose_dim != C:
            raise ValueError(f'OccWorldTransformer: pose_dim ({pose_dim}) must equal the token '
                             f'width C ({C}); the pose and scene queries share each level\'s '
                             'width')
        if len(channels) < 2:
            raise ValueError(f'OccWorldTransformer: channels needs >= 2 levels, got {channels}')
        self.token_shape = (C, h, w)
        self.channels = tuple(channels)
        self.num_frames = int(num_frames)
        self.num_codes = int(num_codes)
        self.ego_queries = False  # see the class docstring
        # Query of frame t uses row t + 1 (it predicts frame t + 1); context uses row t.
        self.temporal_embed = nn.Embedding(num_frames + 1, C)
        self.pose_temporal_embed = nn.Embedding(num_frames + 1, C)

        sizes = [(h, w)]  # token map side per level: 50, 25, 12
        for _ in range(len(channels) - 1):
            sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
        self.sizes = sizes

        self.enc_temporal, self.enc_blocks, self.downs = (nn.ModuleList(), nn.ModuleList(),
                                                          nn.ModuleList())
        self.enc_pose_layers, self.enc_pose_mlps = nn.ModuleList(), nn.ModuleList()
        prev = C
        for ch, size in zip(channels[:-1], sizes[:-1]):
            self.enc_temporal.append(
                nn.ModuleList(TemporalLayer(prev, num_heads, mlp_act)
                              for _ in range(temporal_layers)))
            self.enc_pose_layers.append(
                nn.ModuleList(PoseLayer(prev, num_heads, mlp_act) for _ in range(pose_layers)))
            self.enc_blocks.append(nn.Sequential(UNetBlock(size, prev, ch),
                                                 UNetBlock(size, ch, ch)))
            self.downs.append(nn.Conv2d(ch, ch, kernel_size=2, stride=2))
            self.enc_pose_mlps.append(_mlp2(prev, ch))
            prev = ch
        ch = channels[-1]
        self.mid = nn.Sequential(UNetBlock((prev, *sizes[-1]), prev, ch),
                                 UNetBlock((ch, *sizes[-1]), ch, ch))
        self.pose_mid = _mlp2(prev, ch)
        prev = ch

        self.ups, self.dec_temporal, self.dec_blocks = (nn.ModuleList(), nn.ModuleList(),
                                                        nn.ModuleList())
        self.pose_ups, self.dec_pose_layers, self.dec_pose_mlps = (
            nn.ModuleList(), nn.ModuleList(), nn.ModuleList())
        for ch, size in zip(channels[-2::-1], sizes[-2::-1]):
            agg = 2 * ch  # upsampled + skip
            self.ups.append(nn.ConvTranspose2d(prev, ch, kernel_size=2, stride=2))
            self.dec_temporal.append(
                nn.ModuleList(TemporalLayer(agg, num_heads, mlp_act)
                              for _ in range(temporal_layers)))
            self.dec_blocks.append(nn.Sequential(UNetBlock((agg, *size), agg, ch),
                                                 UNetBlock((ch, *size), ch, ch)))
            self.pose_ups.append(nn.Linear(prev, ch))
            self.dec_pose_layers.append(
                nn.ModuleList(PoseLayer(agg, num_heads, mlp_act) for _ in range(pose_layers)))
            self.dec_pose_mlps.append(_mlp2(agg, ch))
            prev = ch
        self.conv_out = nn.Conv2d(prev, num_codes, 3, 1, 1)
        self.pose_out = nn.Linear(prev, pose_out_dim)

    # ------------------------------------------------------------------ helpers
    def new_cache(self) -> KVCache:
        """An empty cache for one roll-out of at most ``num_frames`` frames."""
        return KVCache(self.num_frames)

    def _check(self, tokens: Tensor, poses: Tensor, start: int) -> None:
        C, h, w = self.token_shape
        if tokens.ndim != 5 or tuple(tokens.shape[2:]) != (C, h, w):
            raise ValueError(f'OccWorldTransformer expects tokens (B, F, {C}, {h}, {w}), got '
                             f'{tuple(tokens.shape)}')
        if poses.shape != (*tokens.shape[:2], C):
            raise ValueError(f'OccWorldTransformer expects pose tokens (B, F, {C}) = '
                             f'{(*tokens.shape[:2], C)}, got {tuple(poses.shape)}')
        if start + tokens.shape[1] > self.num_frames:
            raise ValueError(f'OccWorldTransformer: frames {start}..{start + tokens.shape[1] - 1}'
                             f' exceed the context of num_frames={self.num_frames}')

    # ------------------------------------------------------------------ API
    def forward(self, tokens: Tensor, poses: Tensor) -> Tuple[Tensor, Tensor]:
        """Both streams over all frames (teacher forcing; no cache).

        Args:
            tokens: (B, F, C, h, w) quantized codes of frames 0..F-1.
            poses: (B, F, C) pose-encoder outputs of frames 0..F-1.

        Returns:
            logits (B, F, K, h, w) of frames 1..F and pose features (B, F, pose_out_dim).
        """
        return self._run(tokens, poses, None, num_queries=tokens.shape[1])

    def step(self, tokens: Tensor, poses: Tensor, cache: KVCache) -> Tuple[Tensor, Tensor]:
        """Add frames to the cache and predict the frame after the last one.

        Computes the context stream of the new frames only and the query stream of the last
        frame only; the past comes from ``cache`` (updated in place).

        Args:
            tokens: (B, n, C, h, w) codes of the new frames (n = history on the first call).
            poses: (B, n, C) their pose tokens.
            cache: from :meth:`new_cache`, shared across the calls of one rollout.

        Returns:
            logits (B, K, h, w) and pose features (B, pose_out_dim) of the next frame.
        """
        logits, pose = self._run(tokens, poses, cache, num_queries=1)
        return logits[:, -1], pose[:, -1]

    # ------------------------------------------------------------------ core
    def _run(self, tokens: Tensor, poses: Tensor, cache: Optional[KVCache],
             num_queries: int) -> Tuple[Tensor, Tensor]:
        start = cache.length if cache is not None else 0
        self._check(tokens, poses, start)
        B, n, C, h, w = tokens.shape
        L = num_queries
        frames = torch.arange(start, start + n, device=tokens.device)
        emb_c = self.temporal_embed(frames)  # (n, C)
        emb_q = self.temporal_embed(frames[n - L:] + 1)  # (L, C)
        ctx = tokens + emb_c[None, :, :, None, None]  # (B, n, C, h, w)
        qry = tokens[:, n - L:] + emb_q[None, :, :, None, None]  # (B, L, C, h, w)
        if self.ego_queries:
            qry = qry + poses[:, n - L:, :, None, None]
        pctx = poses + self.pose_temporal_embed(frames)[None]  # (B, n, C)
        pqry = poses[:, n - L:] + self.pose_temporal_embed(frames[n - L:] + 1)[None]  # (B, L, C)
        ctx, qry = ctx.flatten(0, 1), qry.flatten(0, 1)  # (B n, C, h, w), (B L, C, h, w)

        skips: List[Tuple[Tensor, Tensor, Tensor, Tensor]] = []
        for i, (temporal, pose_layers, blocks, down, pose_mlp) in enumerate(zip(
                self.enc_temporal, self.enc_pose_layers, self.enc_blocks, self.downs,
                self.enc_pose_mlps)):
            pqry = self._pose_layers(pose_layers, pqry, pctx, qry, cache, f'enc{i}.pose')
            pctx, pqry = pose_mlp(pctx), pose_mlp(pqry)
            qry = self._temporal_layers(temporal, qry, ctx, B, cache, f'enc{i}.temporal')
            ctx, qry = blocks(ctx), blocks(qry)
            skips.append((ctx, qry, pctx, pqry))
            ctx, qry = down(ctx), down(qry)
        ctx, qry = self.mid(ctx), self.mid(qry)
        pctx, pqry = self.pose_mid(pctx), self.pose_mid(pqry)

        for i, (up, temporal, blocks, pose_up, pose_layers, pose_mlp, skip) in enumerate(zip(
                self.ups, self.dec_temporal, self.dec_blocks, self.pose_ups,
                self.dec_pose_layers, self.dec_pose_mlps, skips[::-1])):
            sctx, sqry, spctx, spqry = skip
            size = sctx.shape[-2:]
            ctx = torch.cat([_pad_to(up(ctx), size), sctx], dim=1)  # (B n, 2 ch, h', w')
            qry = torch.cat([_pad_to(up(qry), size), sqry], dim=1)  # (B L, 2 ch, h', w')
            qry = self._temporal_layers(temporal, qry, ctx, B, cache, f'dec{i}.temporal')
            pctx = torch.cat([pose_up(pctx), spctx], dim=-1)  # (B, n, 2 ch)
            pqry = torch.cat([pose_up(pqry), spqry], dim=-1)  # (B, L, 2 ch)
            pqry = self._pose_layers(pose_layers, pqry, pctx, qry, cache, f'dec{i}.pose')
            pctx, pqry = pose_mlp(pctx), pose_mlp(pqry)
            ctx, qry = blocks(ctx), blocks(qry)
        if cache is not None:
            cache.length += n
        logits = self.conv_out(qry).view(B, L, self.num_codes, h, w)  # (B, L, K, h, w)
        return logits, self.pose_out(pqry)  # (B, L, pose_out_dim)

    def _temporal_layers(self, layers: nn.ModuleList, qry: Tensor, ctx: Tensor, B: int,
                         cache: Optional[KVCache], name: str) -> Tensor:
        """qry (B L, c, h, w) attends over time to ctx (B n, c, h, w) -> (B L, c, h, w)."""
        h, w = qry.shape[-2:]
        q = _to_seq(qry, B)  # (B h w, L, c)
        c = _to_seq(ctx, B)  # (B h w, n, c)
        for j, layer in enumerate(layers):
            k, v = _keys_values(layer.attn, c, cache, f'{name}{j}')
            q = layer(q, k, v)
        return _from_seq(q, B, h, w)

    def _pose_layers(self, layers: nn.ModuleList, pqry: Tensor, pctx: Tensor, qry: Tensor,
                     cache: Optional[KVCache], name: str) -> Tensor:
        """Pose queries (B, L, c) <- pose context (B, n, c) and scene queries (B L, c, h, w)."""
        scene = _to_tokens(qry)  # (B L, h w, c)
        for j, layer in enumerate(layers):
            k, v = _keys_values(layer.temporal, pctx, cache, f'{name}{j}')
            pqry = layer(pqry, k, v, scene)
        return pqry


@MODELS.register_module()
class PoseEncoder(nn.Module):
    """Ego input (relative xy + one-hot command, 2 + 3) -> pose token: Linear-ReLU-Linear.

    Args:
        in_channels: 2 + number of command modes (5).
        out_channels: pose token width (128).
        num_layers: linear layers (2).
    """

    def __init__(self, in_channels: int = 5, out_channels: int = 128, num_layers: int = 2):
        super().__init__()
        layers: List[nn.Module] = []
        for _ in range(num_layers - 1):
            layers += [nn.Linear(in_channels, out_channels), nn.ReLU()]
            in_channels = out_channels
        layers.append(nn.Linear(in_channels, out_channels))
        self.mlp = nn.Sequential(*layers)
        self.in_channels = layers[0].in_features

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_channels) -> (..., out_channels)."""
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'PoseEncoder expects (..., {self.in_channels}) inputs, got '
                             f'{tuple(x.shape)}')
        return self.mlp(x)


@MODELS.register_module()
class PoseDecoder(nn.Module):
    """Pose features -> one xy displacement per mode: Linear-ReLU-Linear.

    Args:
        in_channels: pose feature width (128).
        num_modes: trajectory modes (3: right, left, straight).
        num_layers: linear layers (2).
    """

    def __init__(self, in_channels: int = 128, num_modes: int = 3, num_layers: int = 2):
        super().__init__()
        layers: List[nn.Module] = []
        for _ in range(num_layers - 1):
            layers += [nn.Linear(in_channels, in_channels), nn.ReLU()]
        layers.append(nn.Linear(in_channels, num_modes * 2))
        self.mlp = nn.Sequential(*layers)
        self.num_modes = num_modes

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_channels) -> (..., num_modes, 2) displacements (m)."""
        return self.mlp(x).unflatten(-1, (self.num_modes, 2))
