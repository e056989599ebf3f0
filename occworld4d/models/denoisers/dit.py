"""Generic Diffusion-Transformer pieces (after Peebles & Xie, "Scalable Diffusion Models with
Transformers"): the timestep embedder, the adaLN-Zero block, the final layer and the one
table of size presets (:data:`DIT_PRESETS`, looked up by :func:`dit_size`).

Unlike the class-conditional DiT, the conditioning ``c`` may be PER TOKEN, (B, N, C): DynamicCity
adds spatially varying condition tokens (layout, previous HexPlane) to the global ones
(timestep, trajectory, command). A global (B, C) condition is broadcast over the tokens.

adaLN-Zero: each block regresses shift / scale / gate for its attention and MLP branches from
``c``; the regression layers are zero-initialised so every block starts as the identity and
the final layer outputs zeros (the network starts by predicting eps = 0).
"""
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from occworld4d.models.layers import Attention, timestep_embedding



class DiTSize(NamedTuple):
    """The size of a DiT backbone: one row of :data:`DIT_PRESETS`."""

    depth: int         # transformer blocks
    hidden_size: int   # token width W
    num_heads: int     # attention heads (W must be a multiple of it)
    patch_size: int    # p: tokens are p x p patches of a 2D map (1 = one token per cell)


#: The one table of named DiT sizes, shared by every DiT denoiser (RolloutDiT, OccSoraDiT,
#: UniSceneOccDiT) and looked up by :func:`dit_size` only. MLP ratio 4 unless a config says
#: otherwise.
DIT_PRESETS: Dict[str, DiTSize] = {
    # DynamicCity (3DTopia/DynamicCity@eaf0c6e): the default and the large model
    'DiT-DC/2': DiTSize(16, 384, 8, 2),  # 43,730,432 params on CarlaSC (no conditions)
    'DiT-DC/1': DiTSize(18, 768, 12, 2),
    # the original DiT sizes (Peebles & Xie), at patch 2
    'DiT-S': DiTSize(12, 384, 6, 2),
    'DiT-B': DiTSize(12, 768, 12, 2),
    'DiT-L': DiTSize(24, 1024, 16, 2),
    'DiT-XL': DiTSize(28, 1152, 16, 2),
    # OccSora's denoiser ("DiT-XL/2" in its code, width 256), one token per latent cell
    'DiT-OccSora': DiTSize(28, 256, 16, 1),
    # UniScene's OccDiT (Arlo0o/UniScene DiT_2Frame)
    'UniScene': DiTSize(12, 512, 16, 2),
    # CPU tests, the tiny configs and the synthetic-city demo
    'DiT-tiny': DiTSize(2, 32, 2, 2),
    'UniScene-tiny': DiTSize(2, 32, 2, 2),
}


def dit_size(owner: str, arch: str, depth: Optional[int] = None,
             hidden_size: Optional[int] = None, num_heads: Optional[int] = None,
             patch_size: Optional[int] = None) -> DiTSize:
    """The one lookup rule of the DiT denoisers: ``DIT_PRESETS[arch]``, where every value
    given explicitly (not None) replaces the preset's.

    Args:
        owner: the denoiser's name, for the messages.
        arch: a key of :data:`DIT_PRESETS`.
        depth, hidden_size, num_heads, patch_size: explicit overrides.

    Raises:
        KeyError: an unknown ``arch`` (the message lists the presets).
        ValueError: a size that is not a positive int, or a width that the heads do not
            divide.
    """
    if arch not in DIT_PRESETS:
        raise KeyError(f'{owner}: unknown arch {arch!r}; presets: {sorted(DIT_PRESETS)}')
    given = dict(depth=depth, hidden_size=hidden_size, num_heads=num_heads,
                 patch_size=patch_size)
    size = DIT_PRESETS[arch]._replace(**{k: v for k, v in given.items() if v is not None})
    bad = {k: v for k, v in size._asdict().items()
           if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f'{owner}: sizes must be positive ints, found {bad} (arch {arch!r})')
    if size.hidden_size % size.num_heads:
        raise ValueError(f'{owner}: hidden_size {size.hidden_size} is not a multiple of '
                         f'num_heads {size.num_heads} (arch {arch!r})')
    return size


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x (B, N, C); shift / scale (B, N, C) or (B, 1, C) -> x * (1 + scale) + shift."""
    return x * (1 + scale) + shift


def _per_token(c: Tensor) -> Tensor:
    """(B, C) -> (B, 1, C); (B, N, C) unchanged."""
    return c[:, None] if c.ndim == 2 else c


class TimestepEmbedder(nn.Module):
    """Timesteps (B,) -> (B, C): a 256-wide sinusoidal code, Linear, SiLU, Linear."""

    def __init__(self, hidden_size: int, frequency_size: int = 256):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(nn.Linear(frequency_size, hidden_size), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size))

    def reset_parameters(self) -> None:
        nn.init.normal_(self.mlp[0].weight, std=0.02)
        nn.init.normal_(self.mlp[2].weight, std=0.02)

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_size).to(self.mlp[0].weight.dtype))


MLP_ACTIVATIONS: Tuple[str, ...] = ('gelu_tanh', 'gelu')


def build_mlp_activation(mlp_act: str) -> nn.Module:
    """The MLP activation by name.

    ``'gelu_tanh'``: GELU with the tanh approximation (DiT, DynamicCity and OccSora use it;
    ``GELU(1.0) = 0.8411920``). ``'gelu'``: exact GELU, ``x * Phi(x)`` (the OccWorld world
    model and UniScene's OccDiT use it; ``GELU(1.0) = 0.8413447``). The two differ by up to
    ~5e-4 per activation, so a converted checkpoint needs the reference's choice.
    """
    if mlp_act == 'gelu_tanh':
        return nn.GELU(approximate='tanh')
    if mlp_act == 'gelu':
        return nn.GELU()
    raise ValueError(f'mlp_act must be one of {MLP_ACTIVATIONS}, got {mlp_act!r}')


class Mlp(nn.Module):
    """Linear -> GELU -> Linear (``mlp_act``: see :func:`build_mlp_activation`)."""

    def __init__(self, dim: int, hidden: int, mlp_act: str = 'gelu_tanh'):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = build_mlp_activation(mlp_act)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """Pre-LN transformer block with adaLN-Zero modulation from a (per-token) condition.

    Args:
        hidden_size: token width C.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / C.
        attn_backend: see :func:`occworld4d.models.layers.scaled_dot_product`.
        mlp_act: ``'gelu_tanh'`` (default, DiT's) or ``'gelu'`` (exact); see
            :func:`build_mlp_activation`.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0,
                 attn_backend: str = 'auto', mlp_act: str = 'gelu_tanh'):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads, qkv_bias=True, backend=attn_backend)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio), mlp_act)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def reset_parameters(self) -> None:
        """adaLN-Zero: the modulation regressor starts at zero (gates = 0, block = identity)."""
        nn.init.zeros_(self.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.adaLN_modulation[-1].bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x: (B, N, C); c: (B, C) or (B, N, C) -> (B, N, C)."""
        mod = self.adaLN_modulation(_per_token(c))  # (B, N or 1, 6 C)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mod.chunk(6, dim=-1)
        x = x + gate_a * self.attn(modulate(self.norm1(x), shift_a, scale_a))
        x = x + gate_m * self.mlp(modulate(self.norm2(x), shift_m, scale_m))
        return x


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm and a linear map to p * p * C_out values per token."""

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def reset_parameters(self) -> None:
        """Zero output and modulation: the untrained network predicts exactly 0."""
        for layer in (self.adaLN_modulation[-1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x: (B, N, C); c: (B, C) or (B, N, C) -> (B, N, p * p * C_out)."""
        shift, scale = self.adaLN_modulation(_per_token(c)).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


def basic_init(module: nn.Module) -> None:
    """DiT's default: xavier-uniform Linear weights, zero biases (apply() over the model)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def check_condition_kwargs(owner: str, cond: Dict[str, Optional[Tensor]], known: Sequence[str],
                           enabled: Sequence[str], built_with: str) -> None:
    """Reject condition keyword arguments that a denoiser's ``forward`` would silently ignore.

    Args:
        owner: the denoiser's name, for the message.
        cond: the ``**cond`` of ``forward``.
        known: every condition name the denoiser class understands.
        enabled: the conditions this instance embeds (a given None counts as absent).
        built_with: how the instance was configured, e.g. ``"conditions=('trajectory',)"``.

    Raises:
        TypeError: a name not in ``known``.
        ValueError: a known condition given that this instance does not embed.
    """
    extra = [k for k in cond if k not in known]
    if extra:
        raise TypeError(f'{owner} got unknown condition(s) {extra}; known: {tuple(known)}')
    disabled = [k for k in cond if k not in enabled and cond[k] is not None]
    if disabled:
        raise ValueError(f'{owner} got condition(s) {disabled} that this model does not embed '
                         f'({built_with}); they would be ignored')


def unpatchify(tokens: Tensor, patch_size: int, grid: Tuple[int, int]) -> Tensor:
    """Tokens (B, H/p * W/p, p * p * C) row-major -> map (B, C, H, W)."""
    B, N, D = tokens.shape
    p = patch_size
    h, w = grid
    C = D // (p * p)
    x = tokens.reshape(B, h, w, p, p, C)  # (B, h, w, p, p, C)
    x = torch.einsum('bhwpqc->bchpwq', x)  # (B, C, h, p, w, q)
    return x.reshape(B, C, h * p, w * p)  # (B, C, H, W)
