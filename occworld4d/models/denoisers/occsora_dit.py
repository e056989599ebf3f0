"""OccSora's trajectory-conditioned DiT over the 4D token grid of the VQ tokenizer.

Input: a noisy latent x_t (B, C, T', H', W') (OccSora: the quantized tokens 128 x 4 x 25 x 25,
scaled by 1/10), timesteps t (B,), one condition. Output: (B, 2C, T', H', W') (eps and the
variance interpolation v, learned sigma) or (B, C, T', H', W').

Network (reference wzzheng/OccSora @ 9f8d1f0, ``models.py``):
    tokens = conv3(conv3(x))  two 3x3x3 convs C -> W -> W, no activation between, flattened in
             (t, h, w) order: N = T' H' W' tokens (2500)  + a 1D sin-cos table over 0..N-1
    c      = t_emb (256-wide sinusoid, MLP)  +  cond_emb
    depth x adaLN-Zero DiT blocks (W wide, heads, MLP ratio 4) -> final adaLN layer W -> 2C
Conditions (one, chosen by ``condition``):
    'trajectory' (default, the paper): the ego (x, y) per frame, (B, T, 2 or 3) (a third yaw
        column is ignored), times ``trajectory_scale``, flattened to 2T (64 for T = 32) ->
        MLP Linear(2T, 128) ReLU Linear(128, 128) ReLU Linear(128, W).
    'command' (the released code's behaviour, in spirit): the window command (B,) int64 ->
        one-hot over ``num_commands`` -> the same MLP from ``num_commands`` inputs. (The released
        code feeds 2 columns of a per-frame 3-way one-hot; the datasets here give one command
        per window, so the input is that one-hot.)
    None: unconditional.
``drop[name]`` (B,) True, or the condition missing from the call, replaces that sample's
condition embedding by the null embedding (classifier-free guidance and condition dropout).
The null is zero by default (the unconditional branch sees c = t_emb), which adds no parameter;
``learned_null=True`` makes it a learned W-vector (+W parameters).

Parameter count at the reference config (C 128, grid 4 x 25 x 25, depth 28, width 256,
16 heads, trajectory of 32 frames, learned sigma): 36,819,200, equal to the reference:
input convs 2,654,720 + positions 640,000 (2500 x 256; frozen here, trained in the reference
although initialised as "fixed" sin-cos) + t-embedder 131,584 + trajectory MLP 57,856 +
28 blocks x 1,183,488 + final layer 197,376. Differences to the reference that change no
count: any batch size (the reference reshapes to batch 2), any T' x H' x W' grid, positions
0..N-1 (reference 1..N), a null embedding for CFG (the reference's CFG path feeds the same
condition to both halves). The command variant: 36,811,520 (first MLP layer 4 -> 128).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.models.layers import sincos_1d
from occworld4d.registry import MODELS

from .dit import (DiTBlock, FinalLayer, TimestepEmbedder, basic_init, check_condition_kwargs,
                  dit_size)

CONDITIONS = ('trajectory', 'command')

@MODELS.register_module()
class OccSoraDiT(nn.Module):
    """DiT denoiser over a (C, T', H', W') token grid with a trajectory or command condition.

    Args:
        latent_shape: (C, T', H', W') of one latent (OccSora: (128, 4, 25, 25)).
        arch: a name in :data:`~occworld4d.models.denoisers.dit.DIT_PRESETS` giving (depth,
            width, heads); explicit ``depth`` / ``hidden_size`` / ``num_heads`` override it
            (see :func:`~occworld4d.models.denoisers.dit.dit_size`). The preset's patch size
            does not apply: every latent cell is one token (patch 1).
        mlp_ratio: block MLP width / hidden size.
        learn_sigma: output 2C channels (eps, variance interpolation) instead of C.
        condition: 'trajectory', 'command' or None (unconditional).
        num_frames: T of the voxel window (the trajectory has T rows).
        num_commands: command vocabulary size (0 STATIC, 1 FORWARD, 2 LEFT, 3 RIGHT).
        cond_hidden: hidden width of the condition MLP (128).
        trajectory_scale: metres -> network input (x, y are multiplied by it).
        learned_null: learn the null condition embedding instead of using zero.
        learn_pos_embed: train the sin-cos positional table (the reference does).
        attn_backend: attention backend of every block.
    """

    def __init__(self, latent_shape: Sequence[int] = (128, 4, 25, 25),
                 arch: str = 'DiT-OccSora', depth: Optional[int] = None,
                 hidden_size: Optional[int] = None, num_heads: Optional[int] = None,
                 mlp_ratio: float = 4.0, learn_sigma: bool = True,
                 condition: Optional[str] = 'trajectory', num_frames: int = 32,
                 num_commands: int = 4, cond_hidden: int = 128, trajectory_scale: float = 0.1,
                 learned_null: bool = False, learn_pos_embed: bool = False,
                 attn_backend: str = 'auto'):
        super().__init__()
        if condition is not None and condition not in CONDITIONS:
            raise ValueError(f'OccSoraDiT: condition must be one of {CONDITIONS} or None, got '
                             f'{condition!r}')
        if len(latent_shape) != 4:
            raise ValueError(f'OccSoraDiT: latent_shape must be (C, T\', H\', W\'), got '
                             f'{tuple(latent_shape)}')
        # one token per latent cell: the preset's patch size does not apply (patch 1)
        depth, hidden_size, num_heads, _ = dit_size('OccSoraDiT', arch, depth, hidden_size,
                                                    num_heads, patch_size=1)
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.in_channels = C = self.latent_shape[0]
        self.grid = self.latent_shape[1:]
        self.num_tokens = N = self.grid[0] * self.grid[1] * self.grid[2]
        self.learn_sigma = learn_sigma
        self.out_channels = 2 * C if learn_sigma else C
        self.hidden_size = hidden_size
        self.num_frames = int(num_frames)
        self.num_commands = int(num_commands)
        self.condition = condition
        self.conditions = (condition, ) if condition is not None else ()
        self.trajectory_scale = float(trajectory_scale)

        # Two 3x3x3 convs C -> W -> W (linear, as in the reference), one token per cell.
        self.x_embedder = nn.Sequential(nn.Conv3d(C, hidden_size, 3, padding=1),
                                        nn.Conv3d(hidden_size, hidden_size, 3, padding=1))
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, N, hidden_size),
                                      requires_grad=learn_pos_embed)
        self.cond_embedder = None
        self.null_embedding = None
        if condition is not None:
            cond_in = 2 * self.num_frames if condition == 'trajectory' else self.num_commands
            self.cond_embedder = nn.Sequential(
                nn.Linear(cond_in, cond_hidden), nn.ReLU(),
                nn.Linear(cond_hidden, cond_hidden), nn.ReLU(),
                nn.Linear(cond_hidden, hidden_size))
            if learned_null:
                self.null_embedding = nn.Parameter(torch.zeros(hidden_size))
        self.blocks = nn.ModuleList(
            DiTBlock(hidden_size, num_heads, mlp_ratio, attn_backend) for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, 1, self.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT init: xavier Linear layers, sin-cos positions, adaLN-Zero, zero output layer.
        (The input convs keep PyTorch's default init, as in the reference.)"""
        self.apply(basic_init)
        pos = sincos_1d(self.hidden_size, torch.arange(self.num_tokens))  # (N, W)
        self.pos_embed.data.copy_(pos.float()[None])
        self.t_embedder.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()
        self.final_layer.reset_parameters()

    # ------------------------------------------------------------ conditions
    def _embed(self, value: Tensor) -> Tensor:
        """The configured condition (B, ...) -> (B, W) (before dropping)."""
        B = value.shape[0]
        if self.condition == 'trajectory':
            if value.ndim != 3 or value.shape[1] != self.num_frames or value.shape[2] not in (2, 3):
                raise ValueError(f'OccSoraDiT: trajectory should be (B, {self.num_frames}, 3) '
                                 f'(dx, dy, yaw) or (B, {self.num_frames}, 2), got '
                                 f'{tuple(value.shape)}')
            xy = value[..., :2].float() * self.trajectory_scale  # (B, T, 2)
            return self.cond_embedder(xy.reshape(B, -1))  # (B, W)
        if value.ndim != 1:
            raise ValueError(f'OccSoraDiT: command should be (B,) int64, got '
                             f'{tuple(value.shape)}')
        if value.numel() and (int(value.min()) < 0 or int(value.max()) >= self.num_commands):
            raise ValueError(f'OccSoraDiT: command ids span [{int(value.min())}, '
                             f'{int(value.max())}], expected ids in [0, {self.num_commands}) '
                             f'(num_commands)')
        onehot = F.one_hot(value.long(), self.num_commands).float()  # (B, K_cmd)
        return self.cond_embedder(onehot)  # (B, W)

    def _null(self, batch_size: int, like: Tensor) -> Tensor:
        """(B, W) null condition embedding."""
        if self.null_embedding is None:
            return like.new_zeros(batch_size, self.hidden_size)
        return self.null_embedding.to(like.dtype).expand(batch_size, -1)

    def embed_condition(self, batch_size: int, cond: Dict[str, Tensor],
                        drop: Optional[Dict[str, Tensor]], like: Tensor) -> Optional[Tensor]:
        """(B, W) embedding of the condition (null where dropped or missing); None when
        the model is unconditional."""
        if self.condition is None:
            return None
        value = cond.get(self.condition)
        if value is None:
            return self._null(batch_size, like)
        emb = self._embed(value.to(like.device)).to(like.dtype)  # (B, W)
        d = (drop or {}).get(self.condition)
        if d is not None:
            d = d.to(emb.device).bool().view(-1, 1)  # (B, 1)
            emb = torch.where(d, self._null(batch_size, emb), emb)
        return emb

    # --------------------------------------------------------------- forward
    def forward(self, x: Tensor, t: Tensor, drop: Optional[Dict[str, Tensor]] = None,
                **cond: Tensor) -> Tensor:
        """Predict the diffusion output on a token grid.

        Args:
            x: (B, C, T', H', W') noisy latent.
            t: (B,) timesteps.
            drop: {condition name: bool (B,)}; True = use the null embedding.
            **cond: ``trajectory`` (B, T, 3) or ``command`` (B,), whichever the model was
                built with; missing = dropped. Other known conditions raise (they would be
                silently ignored), unknown keys raise.

        Returns:
            (B, 2C or C, T', H', W').
        """
        if x.ndim != 5 or tuple(x.shape[1:]) != self.latent_shape:
            shape = ', '.join(map(str, self.latent_shape))
            raise ValueError(f'OccSoraDiT expects x of shape (B, {shape}), got '
                             f'{tuple(x.shape)}')
        check_condition_kwargs('OccSoraDiT', cond, CONDITIONS, self.conditions,
                               f'condition={self.condition!r}')
        B = x.shape[0]
        h = self.x_embedder(x.to(self.pos_embed.dtype))  # (B, W, T', H', W')
        tokens = h.flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, W), (t, h, w) order
        c = self.t_embedder(t).to(tokens.dtype)  # (B, W)
        emb = self.embed_condition(B, cond, drop, c)
        if emb is not None:
            c = c + emb  # (B, W)
        for block in self.blocks:
            tokens = block(tokens, c)  # (B, N, W)
        out = self.final_layer(tokens, c)  # (B, N, C_out)
        # (B, N, C_out) -> (B, C_out, T', H', W')
        return out.transpose(1, 2).reshape(B, self.out_channels, *self.grid)
