"""The one attention layer of occworld4d.

Every transformer in the toolkit (DiT blocks, the Projection Module, axial attention,
temporal attention) calls :func:`scaled_dot_product` through :class:`Attention`.
Backends: PyTorch SDPA (default, any device) and flash-attn (optional CUDA fast path,
used when installed, the tensors are fp16/bf16 on CUDA and no arbitrary mask is given).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:  # optional extra: pip install occworld4d[flash]
    from flash_attn import flash_attn_func as _flash_attn_func
except Exception:  # ImportError, or a CUDA/ABI mismatch raised at import
    _flash_attn_func = None

BACKENDS = ('auto', 'sdpa', 'flash')


def flash_available() -> bool:
    return _flash_attn_func is not None


def scaled_dot_product(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None,
                       causal: bool = False, dropout_p: float = 0.0,
                       backend: str = 'auto') -> Tensor:
    """Attention on head-split tensors.

    Args:
        q: (B, H, N, D) queries.
        k, v: (B, H, M, D) keys and values.
        attn_mask: optional bool (B or 1, 1 or H, N or 1, M), True = attend.
        causal: lower-triangular masking (query i sees keys <= i + M - N).
        backend: 'auto' (flash when usable, else SDPA), 'sdpa' or 'flash'.

    Returns:
        (B, H, N, D).
    """
    if backend not in BACKENDS:
        raise ValueError(f'attention backend {backend!r} unknown; expected one of {BACKENDS}')
    flash_ok = (flash_available() and q.is_cuda and attn_mask is None
                and q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] <= 256)
    if backend == 'flash' and not flash_ok:
        raise RuntimeError('attention backend "flash" requested but flash-attn is not '
                           'installed or the inputs are not fp16/bf16 CUDA tensors without mask')
    if flash_ok and backend in ('auto', 'flash'):
        # flash-attn wants (B, N, H, D).
        out = _flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                               dropout_p=dropout_p, causal=causal)
        return out.transpose(1, 2)
    if causal and attn_mask is None and q.shape[-2] != k.shape[-2]:
        # SDPA's is_causal aligns the top-left corner; a query block at the end of a
        # longer key sequence (KV cache) needs the bottom-right alignment.
        n, m = q.shape[-2], k.shape[-2]
        attn_mask = torch.ones(n, m, dtype=torch.bool, device=q.device).tril(m - n)
        causal = False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p,
                                          is_causal=causal)


class Attention(nn.Module):
    """Multi-head self- or cross-attention.

    Args:
        dim: token width C.
        num_heads: heads H (C must be divisible by H).
        qkv_bias: bias on the input projections.
        attn_drop: dropout on attention weights (training only).
        proj_drop: dropout after the output projection.
        context_dim: width of the cross-attention context (None = self-attention).
        backend: see :func:`scaled_dot_product`.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0,
                 context_dim: Optional[int] = None, backend: str = 'auto'):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'attention width {dim} is not divisible by {num_heads} heads')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.backend = backend
        self.is_cross = context_dim is not None
        if self.is_cross:
            self.q = nn.Linear(dim, dim, bias=qkv_bias)
            self.kv = nn.Linear(context_dim, 2 * dim, bias=qkv_bias)
        else:
            self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, context: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None, causal: bool = False) -> Tensor:
        """x: (B, N, C); context: (B, M, C_ctx) for cross-attention -> (B, N, C)."""
        B, N, C = x.shape
        H = self.num_heads
        if self.is_cross:
            if context is None:
                raise ValueError('cross-attention layer called without context')
            q = self.q(x).view(B, N, H, C // H).transpose(1, 2)  # (B, H, N, D)
            kv = self.kv(context).view(B, context.shape[1], 2, H, C // H)  # (B, M, 2, H, D)
            k, v = kv.permute(2, 0, 3, 1, 4)  # 2 x (B, H, M, D)
        else:
            qkv = self.qkv(x).view(B, N, 3, H, C // H)  # (B, N, 3, H, D)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, D)
        out = scaled_dot_product(q, k, v, attn_mask=attn_mask, causal=causal,
                                 dropout_p=self.attn_drop if self.training else 0.0,
                                 backend=self.backend)
        out = out.transpose(1, 2).reshape(B, N, C)  # (B, N, C)
        return self.proj_drop(self.proj(out))
