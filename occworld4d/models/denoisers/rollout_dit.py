"""DynamicCity's DiT over the padded HexPlane rollout.

Input: a noisy rollout canvas x_t (B, C, S, S) (see
:class:`~occworld4d.models.tokenizers.rollout.PaddedRollout`), timesteps t (B,), conditions.
Output: (B, 2C, S, S) (eps and the variance interpolation v, learned sigma) or (B, C, S, S).

Conditioning (adaLN-Zero, per token):
    c = t_emb + traj_emb + cmd_emb  (global, (B, C))  +  layout tokens + hexplane tokens ((B, N, C))
- ``trajectory`` (B, T, 3) -> flattened 3T -> MLP Linear-ReLU-Linear-ReLU-Linear;
- ``command`` (B,) int64 -> Embedding(4);
- ``layout`` (B, T, h, w) BEV maps -> nearest-resized to X' x Y', zero-padded to S x S,
  patch-embedded (T channels) + the positional table;
- ``hexplane`` (B, C, S, S) the previous window's rollout -> patch-embedded + positions.
Each enabled condition owns a learned null embedding (zero-initialised); ``drop[name]`` (B,)
True, or the condition missing from the call, puts the null embedding in that sample's place
(classifier-free guidance and condition dropout).

Padded tokens (patches of pure padding) are removed before the blocks and the output there is
exactly zero, so the network never sees nor writes padding.

Parameter count (CarlaSC: in_channels 16, canvas 76, patch 2, DiT-DC/2): the backbone
without condition embedders, like the reference's default (all condition flags off), is
43,730,432 parameters, 554,496 of them the frozen positional table (1444 x 384). Each
enabled condition adds: trajectory 314,496 + null 384; command 1,536 + 384; layout 24,960
+ 384 (a full-width patch embed; the reference embeds the layout to width 1); hexplane
24,960 + 384. All four: 44,097,920 (+0.84 %).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.models.layers import PatchEmbed2d, sincos_2d
from occworld4d.models.tokenizers.rollout import PaddedRollout
from occworld4d.registry import MODELS

from .dit import (DiTBlock, FinalLayer, TimestepEmbedder, basic_init,
                  check_condition_kwargs, dit_size, unpatchify)

CONDITIONS = ('trajectory', 'command', 'layout', 'hexplane')


@MODELS.register_module()
class RolloutDiT(nn.Module):
    """DiT denoiser over a HexPlane padded rollout with DynamicCity's conditions.

    Args:
        hex_shape: plane sizes (T', X', Y', Z'); canvas S = X' + T' + Z'.
        in_channels: latent channels C of each plane.
        arch: a name in :data:`~occworld4d.models.denoisers.dit.DIT_PRESETS` giving (depth,
            hidden_size, num_heads, patch_size); the explicit ones override it (see
            :func:`~occworld4d.models.denoisers.dit.dit_size`).
        patch_size: p (S must be divisible by p); None = the preset's.
        mlp_ratio: MLP width / hidden size.
        learn_sigma: output 2C channels (eps, variance interpolation) instead of C.
        conditions: subset of ('trajectory', 'command', 'layout', 'hexplane') to embed.
        num_frames: T of the voxel window (trajectory length, layout channels).
        num_commands: size of the command vocabulary.
        drop_padding: physically drop all-padding patches before the blocks.
        attn_backend: attention backend of every block.
    """

    def __init__(self, hex_shape: Sequence[int], in_channels: int = 16, arch: str = 'DiT-DC/2',
                 depth: Optional[int] = None, hidden_size: Optional[int] = None,
                 num_heads: Optional[int] = None, patch_size: Optional[int] = None,
                 mlp_ratio: float = 4.0, learn_sigma: bool = True,
                 conditions: Sequence[str] = CONDITIONS,
                 num_frames: int = 16, num_commands: int = 4, drop_padding: bool = True,
                 attn_backend: str = 'auto'):
        super().__init__()
        unknown = [c for c in conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f'RolloutDiT: unknown conditions {unknown}; expected a subset of '
                             f'{CONDITIONS}')
        depth, hidden_size, num_heads, patch_size = dit_size(
            'RolloutDiT', arch, depth, hidden_size, num_heads, patch_size)
        self.rollout = PaddedRollout(hex_shape)
        self.canvas_size = S = self.rollout.canvas_size
        self.hex_shape = tuple(hex_shape)
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        self.learn_sigma = learn_sigma
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.conditions = tuple(conditions)
        self.grid = (S // patch_size, S // patch_size)
        num_patches = self.grid[0] * self.grid[1]

        self.x_embedder = PatchEmbed2d(in_channels, hidden_size, patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        # Fixed 2D sin-cos positions: a frozen parameter (counted, never trained).
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size), requires_grad=False)
        self.cond_embedders = nn.ModuleDict()
        self.null_embeddings = nn.ParameterDict()
        if 'trajectory' in self.conditions:
            self.cond_embedders['trajectory'] = nn.Sequential(
                nn.Linear(3 * num_frames, hidden_size), nn.ReLU(),
                nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                nn.Linear(hidden_size, hidden_size))
        if 'command' in self.conditions:
            self.cond_embedders['command'] = nn.Embedding(num_commands, hidden_size)
        if 'layout' in self.conditions:
            self.cond_embedders['layout'] = PatchEmbed2d(num_frames, hidden_size, patch_size)
        if 'hexplane' in self.conditions:
            self.cond_embedders['hexplane'] = PatchEmbed2d(in_channels, hidden_size, patch_size)
        for name in self.conditions:
            self.null_embeddings[name] = nn.Parameter(torch.zeros(hidden_size))

        self.blocks = nn.ModuleList(
            DiTBlock(hidden_size, num_heads, mlp_ratio, attn_backend) for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        # on the CPU explicitly, so that the model also builds under torch.device('meta')
        keep = self.rollout.patch_mask(patch_size, 'cpu') if drop_padding else torch.ones(
            num_patches, dtype=torch.bool, device='cpu')
        self.register_buffer('keep_index', keep.nonzero().squeeze(1), persistent=False)
        self.reset_parameters()

    @property
    def num_tokens(self) -> int:
        """Tokens that go through the blocks (all-padding patches excluded)."""
        return int(self.keep_index.numel())

    def reset_parameters(self) -> None:
        self.apply(basic_init)
        self.pos_embed.data.copy_(sincos_2d(self.pos_embed.shape[-1], *self.grid)[None])
        self.x_embedder.reset_parameters()
        for name, emb in self.cond_embedders.items():
            if isinstance(emb, PatchEmbed2d):
                emb.reset_parameters()
            elif isinstance(emb, nn.Embedding):
                nn.init.normal_(emb.weight, std=0.02)
        self.t_embedder.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()
        self.final_layer.reset_parameters()

    # ------------------------------------------------------------ conditions
    def _embed(self, name: str, value: Tensor) -> Tensor:
        """One condition -> (B, C) global or (B, N, C) token embedding (before dropping)."""
        B = value.shape[0]
        if name == 'trajectory':
            if value.shape[1:] != (self.num_frames, 3):
                raise ValueError(f'RolloutDiT: trajectory should be (B, {self.num_frames}, 3), '
                                 f'got {tuple(value.shape)}')
            return self.cond_embedders[name](value.reshape(B, -1).float())  # (B, C)
        if name == 'command':
            if value.ndim != 1:
                raise ValueError(f'RolloutDiT: command should be (B,) int64, got '
                                 f'{tuple(value.shape)}')
            emb = self.cond_embedders[name]
            if value.numel() and (int(value.min()) < 0 or int(value.max()) >= emb.num_embeddings):
                raise ValueError(f'RolloutDiT: command ids span [{int(value.min())}, '
                                 f'{int(value.max())}], expected ids in [0, '
                                 f'{emb.num_embeddings}) (num_commands)')
            return emb(value.long())  # (B, C)
        if name == 'layout':
            if value.ndim != 4 or value.shape[1] != self.num_frames:
                raise ValueError(f'RolloutDiT: layout should be (B, {self.num_frames}, h, w), '
                                 f'got {tuple(value.shape)}')
            _, x, y, _ = self.hex_shape
            pad = self.canvas_size - x
            layout = F.interpolate(value.float(), size=(x, y), mode='nearest')  # (B, T, X', Y')
            layout = F.pad(layout, (0, pad, 0, pad))  # (B, T, S, S)
            return self.cond_embedders[name](layout) + self.pos_embed  # (B, N, C)
        S = self.canvas_size
        if value.shape[1:] != (self.in_channels, S, S):
            raise ValueError(f'RolloutDiT: hexplane condition should be (B, {self.in_channels}, '
                             f'{S}, {S}), got {tuple(value.shape)}')
        return self.cond_embedders[name](value.to(self.pos_embed.dtype)) + self.pos_embed

    def embed_conditions(self, batch_size: int, cond: Dict[str, Tensor],
                         drop: Optional[Dict[str, Tensor]] = None):
        """Sum of the global and the per-token condition embeddings.

        Returns:
            (global (B, C) or None, tokens (B, N, C) or None).
        """
        drop = drop or {}
        glob, tok = None, None
        for name in self.conditions:
            null = self.null_embeddings[name]
            value = cond.get(name)
            if value is None:
                emb = null.expand(batch_size, -1)  # (B, C)
                if name in ('layout', 'hexplane'):
                    emb = emb[:, None] + self.pos_embed  # (B, N, C)
            else:
                emb = self._embed(name, value)
                d = drop.get(name)
                if d is not None:
                    d = d.to(emb.device).bool().view(-1, *([1] * (emb.ndim - 1)))
                    nul = null if emb.ndim == 2 else null + self.pos_embed[0]
                    emb = torch.where(d, nul.to(emb.dtype), emb)
            if emb.ndim == 2:
                glob = emb if glob is None else glob + emb
            else:
                tok = emb if tok is None else tok + emb
        return glob, tok

    # --------------------------------------------------------------- forward
    def forward(self, x: Tensor, t: Tensor, drop: Optional[Dict[str, Tensor]] = None,
                **cond: Tensor) -> Tensor:
        """Predict the diffusion output on a rollout canvas.

        Args:
            x: (B, C, S, S) noisy latent canvas.
            t: (B,) timesteps.
            drop: {condition name: bool (B,)}; True = use the null embedding.
            **cond: trajectory (B, T, 3), command (B,), layout (B, T, h, w),
                hexplane (B, C, S, S); missing conditions count as dropped. Unknown keys
                and conditions the model was built without raise (they would otherwise
                silently mean "unconditional").

        Returns:
            (B, 2C or C, S, S); exactly zero on all-padding patches.
        """
        S = self.canvas_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, S, S):
            raise ValueError(f'RolloutDiT expects x of shape (B, {self.in_channels}, {S}, {S}), '
                             f'got {tuple(x.shape)}')
        check_condition_kwargs('RolloutDiT', cond, CONDITIONS, self.conditions,
                               f'conditions={self.conditions}')
        B = x.shape[0]
        tokens = self.x_embedder(x) + self.pos_embed  # (B, N, C)
        c = self.t_embedder(t).to(tokens.dtype)  # (B, C)
        glob, tok = self.embed_conditions(B, cond, drop)
        if glob is not None:
            c = c + glob
        c = c[:, None]  # (B, 1, C)
        if tok is not None:
            c = c + tok  # (B, N, C)
        keep = self.keep_index
        tokens = tokens[:, keep]  # (B, N_keep, C)
        if c.shape[1] > 1:
            c = c[:, keep]  # (B, N_keep, C)
        for block in self.blocks:
            tokens = block(tokens, c)  # (B, N_keep, C)
        out = self.final_layer(tokens, c)  # (B, N_keep, p p C_out)
        full = out.new_zeros(B, self.grid[0] * self.grid[1], out.shape[-1])  # (B, N, p p C_out)
        full[:, keep] = out
        return unpatchify(full, self.patch_size, self.grid)  # (B, C_out, S, S)
