"""Finite Scalar Quantization (Mentzer et al., ICLR 2024) as a drop-in quantizer.

Instead of a learned codebook, the D-dimensional feature is projected to d = len(levels)
scalars, each bounded and rounded to one of ``levels[i]`` values; the code id is the
mixed-radix number of those digits, so the implicit codebook has prod(levels) entries and
can never collapse (no dead codes, no codebook / commitment loss).

It satisfies the interface of :class:`occworld4d.models.tokenizers.VectorQuantizer`
(``forward(z) -> QuantizerOutput``, ``get_codebook_entry``, ``code_dim``, ``num_codes``),
so a config swaps it in with one line.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from occworld4d.models.tokenizers.quantizers import QuantizerOutput, VectorQuantizer
from occworld4d.registry import MODELS


@MODELS.register_module()
class FSQuantizer(nn.Module):
    """FSQ with per-dimension ``levels`` (default 8 x 8 x 8 = 512 codes, as the VQ codebook).

    Args:
        code_dim: D, width of the features in and out.
        levels: number of values of each scalar (d = len(levels) scalars).
        num_codes: accepted for drop-in compatibility with ``VectorQuantizer`` configs; must
            equal prod(levels) when given.
        beta: accepted for drop-in compatibility; FSQ has no commitment loss.
    """

    def __init__(self, code_dim: int = 128, levels: Sequence[int] = (8, 8, 8),
                 num_codes: Optional[int] = None, beta: Optional[float] = None):
        super().__init__()
        if any(int(n) < 2 for n in levels):
            raise ValueError(f'FSQ levels must all be >= 2, got {levels}')
        implicit = int(torch.tensor(levels).prod())
        if num_codes is not None and num_codes != implicit:
            raise ValueError(f'FSQ levels {tuple(levels)} give {implicit} codes, but '
                             f'num_codes={num_codes} was requested')
        self.code_dim = code_dim
        self.register_buffer('levels', torch.tensor(levels, dtype=torch.long), persistent=False)
        basis = torch.cumprod(torch.tensor([1] + list(levels[:-1])), 0)
        self.register_buffer('basis', basis, persistent=False)
        self.num_codes = implicit
        self.project_in = nn.Linear(code_dim, len(levels))
        self.project_out = nn.Linear(len(levels), code_dim)

    def _bound(self, z: Tensor) -> Tensor:
        """Map to [0, L-1] per scalar (L = its number of levels)."""
        half = (self.levels - 1).float() / 2
        return (torch.tanh(z) + 1) * half

    def forward(self, z: Tensor) -> QuantizerOutput:
        """z: (B, D, *S) -> :class:`QuantizerOutput` (loss is 0: FSQ needs none)."""
        if z.ndim < 2 or z.shape[1] != self.code_dim:
            raise ValueError(f'FSQuantizer expects (B, {self.code_dim}, ...) features, got '
                             f'{tuple(z.shape)}')
        h = self._bound(self.project_in(z.movedim(1, -1)))  # (B, *S, d) in [0, L-1]
        digits = h.round()
        h_q = h + (digits - h).detach()  # straight-through rounding
        indices = (digits.long() * self.basis).sum(-1)  # (B, *S)
        out = self.project_out(self._normalise(h_q)).movedim(-1, 1)  # (B, D, *S)
        counts = torch.bincount(indices.flatten(), minlength=self.num_codes)
        return QuantizerOutput(out, z.new_zeros(()), indices,
                               VectorQuantizer.perplexity(counts), z.new_zeros((), dtype=torch.long))

    def _normalise(self, digits: Tensor) -> Tensor:
        half = (self.levels - 1).float() / 2
        return (digits - half) / half  # [-1, 1]

    def get_codebook_entry(self, indices: Tensor) -> Tensor:
        """Code ids (B, *S) -> features (B, D, *S)."""
        digits = (indices.long().unsqueeze(-1) // self.basis) % self.levels  # (B, *S, d)
        return self.project_out(self._normalise(digits.float())).movedim(-1, 1)
