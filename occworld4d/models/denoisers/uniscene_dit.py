"""UniScene's OccDiT: a spatio-temporal DiT over the occupancy KL-VAE latent, conditioned on a
BEV layout concatenated to the noisy latent.

Input: a noisy latent clip x_t (B, C, T, H, W) (the KL-VAE's ``encode`` layout, scaled by the
generator's ``latent_scale``), timesteps t (B,), the layout (B, T, h, w). Output:
(B, 2C, T, H, W) (eps and the variance interpolation v, learned sigma) or (B, C, T, H, W).

Data flow (p patch, S = H / p * W / p tokens a frame, D width)::

    layout (B, T, h, w) --max-pool to (H, W), normalise, null where dropped--> (B, T, 1, H, W)
    cat([x_t per frame (B, T, C, H, W), layout]) -> (B T, C + 1, H, W)
    --PatchEmbed2d--> (B T, S, D) + 2D sin-cos (per frame) + 1D sin-cos over T (per token)
    blocks 0, 2, 4, ...: spatial attention over the S tokens of a frame     (B T, S, D)
    blocks 1, 3, 5, ...: temporal attention over the T frames of a token    (B S, T, D)
    final adaLN layer -> unpatchify -> (B, C_out, T, H, W)

adaLN-Zero conditioning ``c = t_emb (+ meta_emb)`` is global: the same (B, D) vector drives
every frame / token of a sample.

Layout values: the project's UniScene map (:func:`occworld4d.rendering.bev_layout.
uniscene_layout`): 0 = empty, 1 + the index of the top layout channel elsewhere (1 .. L, L =
``layout_classes``). Like the reference, the network sees ``(v - 1) / (L - 1)`` in [0, 1] and
-1 on empty cells; a layout given at a multiple of the latent size (200 x 200 for a 50 x 50
latent) is max-pooled first (the order does not matter: the normalisation is monotonic). The
null layout of classifier-free guidance is the all -1 map (the reference's ``-ones``), so it
has no parameters; it coincides with an all-empty layout, as in the reference.
``layout_encoding='onehot'`` (not the reference's) feeds the pooled map as L + 1 one-hot
channels (empty = channel 0) instead of one scalar channel, and the null layout is all zeros,
distinct from an empty layout: the patch embedding then reads a class with one linear map
instead of thresholding a scalar. The CPU recipe uses it (docs/learning.md).

``meta`` (off by default) is the reference's 4 occupancy statistics of the ground-truth
reference frame (see :func:`occupancy_meta`), embedded by a Linear-ReLU-Linear-ReLU-Linear MLP
(4 -> D / 2 -> D / 2 -> D) and added to c; dropped = a zero embedding. It leaks ground truth
into generation and exists only to reproduce the reference's table
(:class:`~occworld4d.models.generators.UniSceneLatentDiffusion` with
``reference_gt_prior=True``; the statistics are :func:`~occworld4d.models.generators.uniscene.
occupancy_meta`).

Parameter count (Arlo0o/UniScene ``DiT_2Frame`` with depth 12, width 512, 16 heads, patch 2,
C = 4, T = 5, 50 x 50 latent, learned sigma): with the 4-value meta embedder as the reference
builds it, 58,183,200 parameters, of which 57,860,640 trainable; the 322,560 frozen ones are
the sin-cos tables (625 x 512 spatial + 5 x 512 temporal). occworld4d's default (no meta: no
ground truth in generation) is 198,656 fewer: 57,984,544 (57,661,984 trainable).

The MLP's GELU is exact (``mlp_act='gelu'``, the default), as the reference's ``DiTBlock``
(``nn.GELU()``, Arlo0o/UniScene @ e98413d ``occupancy_gen/diffusion/models.py``);
``mlp_act='gelu_tanh'`` is the tanh approximation of the other DiTs (up to 1e-4 apart in the
outputs). Differences from the reference that do not change the parameter count: condition
dropout is per sample (the reference drops the layout of the whole batch at once), and CFG
combines all output channels (the reference's ``forward_with_cfg`` guides only the first 3).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.models.layers import PatchEmbed2d, sincos_1d, sincos_2d
from occworld4d.registry import MODELS

from .dit import (DiTBlock, FinalLayer, TimestepEmbedder, basic_init, check_condition_kwargs,
                  dit_size, unpatchify)

CONDITIONS = ('layout', 'meta')

@MODELS.register_module()
class UniSceneOccDiT(nn.Module):
    """Spatio-temporal DiT with a concatenated BEV layout (UniScene's OccDiT).

    Args:
        input_size: latent (H, W) a frame (an int for a square latent); 50 for Occ3D.
        in_channels: latent channels C (4).
        num_frames: T of the clip (5); the temporal sin-cos table has T rows.
        arch: a name in :data:`~occworld4d.models.denoisers.dit.DIT_PRESETS` giving (depth,
            hidden_size, num_heads, patch_size); the explicit ones override it (see
            :func:`~occworld4d.models.denoisers.dit.dit_size`). 'UniScene' is the
            reference's OccDiT.
        patch_size: p (H and W must be multiples of p); None = the preset's.
        mlp_ratio: MLP width / hidden size.
        learn_sigma: output 2C channels (eps, variance interpolation) instead of C.
        conditions: subset of ('layout', 'meta'); 'meta' needs ``meta_dim``.
        layout_classes: L, the largest layout value (12 = ``LAYOUT_CHANNELS``).
        null_layout_value: the value of every cell of the null layout (-1, the reference's).
        layout_encoding: 'scalar' (the reference: one channel (v - 1) / (L - 1), -1 empty) or
            'onehot' (L + 1 channels, the null layout all zeros).
        meta_dim: size of the meta vector (the reference: 4); None = no meta embedder.
        first_block: 'spatial' (the reference: even blocks spatial) or 'temporal'.
        attn_backend: attention backend of every block.
        mlp_act: 'gelu' (exact, the reference's) or 'gelu_tanh' (see
            :func:`~occworld4d.models.denoisers.dit.build_mlp_activation`).
    """

    def __init__(self, input_size: Union[int, Sequence[int]] = 50, in_channels: int = 4,
                 num_frames: int = 5, arch: str = 'UniScene', depth: Optional[int] = None,
                 hidden_size: Optional[int] = None, num_heads: Optional[int] = None,
                 patch_size: Optional[int] = None, mlp_ratio: float = 4.0,
                 learn_sigma: bool = True, conditions: Sequence[str] = ('layout', ),
                 layout_classes: int = 12,
                 null_layout_value: float = -1.0, meta_dim: Optional[int] = None,
                 layout_encoding: str = 'scalar', first_block: str = 'spatial',
                 attn_backend: str = 'auto', mlp_act: str = 'gelu'):
        super().__init__()
        unknown = [c for c in conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f'UniSceneOccDiT: unknown conditions {unknown}; expected a subset '
                             f'of {CONDITIONS}')
        if 'meta' in conditions and not meta_dim:
            raise ValueError('UniSceneOccDiT: the "meta" condition needs meta_dim (the '
                             'reference: 4)')
        if first_block not in ('spatial', 'temporal'):
            raise ValueError(f'UniSceneOccDiT: first_block must be "spatial" or "temporal", '
                             f'got {first_block!r}')
        if layout_encoding not in ('scalar', 'onehot'):
            raise ValueError(f'UniSceneOccDiT: layout_encoding must be "scalar" or "onehot", '
                             f'got {layout_encoding!r}')
        if int(layout_classes) < 2:
            raise ValueError(f'UniSceneOccDiT: layout_classes must be >= 2, got {layout_classes}')
        depth, hidden_size, num_heads, patch_size = dit_size(
            'UniSceneOccDiT', arch, depth, hidden_size, num_heads, patch_size)
        H, W = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if H % patch_size or W % patch_size:
            raise ValueError(f'UniSceneOccDiT: input_size {(H, W)} is not divisible by '
                             f'patch_size {patch_size}')
        self.input_size = (int(H), int(W))
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        self.learn_sigma = learn_sigma
        self.num_frames = int(num_frames)
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.conditions = tuple(conditions)
        self.layout_classes = int(layout_classes)
        self.null_layout_value = float(null_layout_value)
        self.layout_encoding = layout_encoding
        self.first_block = first_block
        self.grid = (H // patch_size, W // patch_size)
        num_patches = self.grid[0] * self.grid[1]

        # The layout is one extra input channel whether or not it is given (null = -1 map),
        # so a layout-conditioned and an unconditional call share the same patch embedding.
        self.layout_channels = 0
        if 'layout' in self.conditions:
            self.layout_channels = 1 if layout_encoding == 'scalar' else self.layout_classes + 1
        self.x_embedder = PatchEmbed2d(in_channels + self.layout_channels, hidden_size,
                                       patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        # Fixed sin-cos tables: frozen parameters (counted, never trained), as the reference.
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size),
                                      requires_grad=False)
        self.temp_embed = nn.Parameter(torch.zeros(1, self.num_frames, hidden_size),
                                       requires_grad=False)
        self.meta_dim = int(meta_dim) if meta_dim else None
        if 'meta' in self.conditions:
            half = hidden_size // 2
            self.meta_embedder = nn.Sequential(
                nn.Linear(self.meta_dim, half), nn.ReLU(), nn.Linear(half, half), nn.ReLU(),
                nn.Linear(half, hidden_size))
        self.blocks = nn.ModuleList(
            DiTBlock(hidden_size, num_heads, mlp_ratio, attn_backend, mlp_act)
            for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.apply(basic_init)
        self.pos_embed.data.copy_(sincos_2d(self.hidden_size, *self.grid)[None])
        self.temp_embed.data.copy_(
            sincos_1d(self.hidden_size, torch.arange(self.num_frames)).float()[None])
        self.x_embedder.reset_parameters()
        self.t_embedder.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()
        self.final_layer.reset_parameters()

    def block_kinds(self) -> List[str]:
        """'spatial' / 'temporal' of each block, in order (they alternate)."""
        kinds = ('spatial', 'temporal') if self.first_block == 'spatial' else (
            'temporal', 'spatial')
        return [kinds[i % 2] for i in range(len(self.blocks))]

    # ------------------------------------------------------------ conditions
    def layout_input(self, layout: Optional[Tensor], batch_size: int,
                     drop: Optional[Tensor] = None, device=None,
                     dtype=torch.float32) -> Tensor:
        """The layout channel(s) the network sees: (B, T, 1, H, W) ('scalar') or
        (B, T, L + 1, H, W) ('onehot').

        Args:
            layout: (B, T, h, w) values 0 (empty) .. L, with (h, w) the latent size or a
                multiple of it (max-pooled); None = the null layout for every sample.
            drop: bool (B,); True = the null layout for that sample.
        """
        T, (H, W) = self.num_frames, self.input_size
        onehot = self.layout_encoding == 'onehot'
        null = torch.full((batch_size, T, self.layout_channels if onehot else 1, H, W),
                          0.0 if onehot else self.null_layout_value, device=device, dtype=dtype)
        if layout is None:
            return null
        if layout.ndim != 4 or layout.shape[0] != batch_size or layout.shape[1] != T:
            raise ValueError(f'UniSceneOccDiT: layout should be (B={batch_size}, T={T}, h, w), '
                             f'got {tuple(layout.shape)}')
        h, w = layout.shape[-2:]
        if h % H or w % W or h // H != w // W:
            raise ValueError(f'UniSceneOccDiT: layout of {h} x {w} cells cannot be max-pooled '
                             f'to the {H} x {W} latent (sizes must be the same multiple)')
        lay = layout.to(device=device, dtype=dtype)
        if h != H:
            k = h // H
            lay = F.max_pool2d(lay.flatten(0, 1)[:, None], k).view(batch_size, T, H, W)
        if onehot:
            idx = lay.round().long()
            if int(idx.min()) < 0 or int(idx.max()) > self.layout_classes:
                raise ValueError(f'UniSceneOccDiT: layout values must be 0 .. '
                                 f'{self.layout_classes}, found {int(idx.min())} .. '
                                 f'{int(idx.max())}')
            lay = F.one_hot(idx, self.layout_classes + 1).to(dtype).permute(0, 1, 4, 2, 3)
        else:
            lay = torch.where(lay > 0, (lay - 1) / (self.layout_classes - 1),
                              torch.full_like(lay, -1.0))[:, :, None]  # (B, T, 1, H, W)
        if drop is not None:
            d = drop.to(device).bool().view(-1, 1, 1, 1, 1)
            lay = torch.where(d, null, lay)
        return lay

    def meta_embedding(self, meta: Optional[Tensor], batch_size: int,
                       drop: Optional[Tensor] = None) -> Optional[Tensor]:
        """(B, D) meta embedding (zeros when missing or dropped), None without a meta embedder."""
        if 'meta' not in self.conditions:
            return None
        if meta is None:
            return self.t_embedder.mlp[0].weight.new_zeros(batch_size, self.hidden_size)
        if meta.shape != (batch_size, self.meta_dim):
            raise ValueError(f'UniSceneOccDiT: meta should be (B={batch_size}, '
                             f'{self.meta_dim}), got {tuple(meta.shape)}')
        emb = self.meta_embedder(meta.to(self.pos_embed.dtype))  # (B, D)
        if drop is not None:
            emb = torch.where(drop.to(emb.device).bool()[:, None], torch.zeros_like(emb), emb)
        return emb

    # --------------------------------------------------------------- forward
    def forward(self, x: Tensor, t: Tensor, drop: Optional[Dict[str, Tensor]] = None,
                **cond: Tensor) -> Tensor:
        """Predict the diffusion output of a latent clip.

        Args:
            x: (B, C, T, H, W) noisy latent.
            t: (B,) timesteps.
            drop: {condition name: bool (B,)}; True = the null layout / zero meta.
            **cond: layout (B, T, h, w), meta (B, meta_dim); a missing condition counts as
                dropped. Unknown keys and conditions the model was built without raise.

        Returns:
            (B, C_out, T, H, W).
        """
        T, (H, W) = self.num_frames, self.input_size
        if x.ndim != 5 or tuple(x.shape[1:]) != (self.in_channels, T, H, W):
            raise ValueError(f'UniSceneOccDiT expects x of shape (B, {self.in_channels}, {T}, '
                             f'{H}, {W}), got {tuple(x.shape)}')
        check_condition_kwargs('UniSceneOccDiT', cond, CONDITIONS, self.conditions,
                               f'conditions={self.conditions}')
        drop = drop or {}
        B = x.shape[0]
        S = self.grid[0] * self.grid[1]
        frames = x.transpose(1, 2)  # (B, T, C, H, W)
        if self.layout_channels:
            lay = self.layout_input(cond.get('layout'), B, drop.get('layout'), x.device,
                                    x.dtype)
            frames = torch.cat([frames, lay], dim=2)  # (B, T, C + 1, H, W)
        tokens = self.x_embedder(frames.flatten(0, 1)) + self.pos_embed  # (B T, S, D)
        tokens = tokens.view(B, T, S, -1) + self.temp_embed[:, :, None]  # (B, T, S, D)
        c = self.t_embedder(t).to(tokens.dtype)  # (B, D)
        meta = self.meta_embedding(cond.get('meta'), B, drop.get('meta'))
        if meta is not None:
            c = c + meta
        c_s = c.repeat_interleave(T, dim=0)  # (B T, D), one per frame
        c_t = c.repeat_interleave(S, dim=0)  # (B S, D), one per token position
        tokens = tokens.flatten(0, 1)  # (B T, S, D)
        layout_is = 'spatial'
        for kind, block in zip(self.block_kinds(), self.blocks):
            if kind != layout_is:  # switch (B T, S, D) <-> (B S, T, D)
                a, b = (T, S) if layout_is == 'spatial' else (S, T)
                tokens = tokens.view(B, a, b, -1).transpose(1, 2).flatten(0, 1)
                layout_is = kind
            tokens = block(tokens, c_s if kind == 'spatial' else c_t)
        if layout_is == 'temporal':
            tokens = tokens.view(B, S, T, -1).transpose(1, 2).flatten(0, 1)  # (B T, S, D)
        out = self.final_layer(tokens, c_s)  # (B T, S, p p C_out)
        out = unpatchify(out, self.patch_size, self.grid)  # (B T, C_out, H, W)
        return out.view(B, T, self.out_channels, H, W).transpose(1, 2)  # (B, C_out, T, H, W)
