import math

import pytest
import torch

from occworld4d.models.layers import Attention, scaled_dot_product


def manual_attention(q, k, v, mask=None):
    w = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        w = w.masked_fill(~mask, float('-inf'))
    return w.softmax(-1) @ v


def test_sdpa_matches_manual_and_causal_alignment():
    q, k, v = torch.randn(3, 2, 2, 5, 4).unbind(0)
    assert torch.allclose(scaled_dot_product(q, k, v), manual_attention(q, k, v), atol=1e-6)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    assert torch.allclose(scaled_dot_product(q, k, v, causal=True),
                          manual_attention(q, k, v, causal), atol=1e-6)
    # A block of 2 new queries against 5 cached keys sees keys <= its absolute position.
    out = scaled_dot_product(q[:, :, 3:], k, v, causal=True)
    assert torch.allclose(out, manual_attention(q, k, v, causal)[:, :, 3:], atol=1e-6)


def test_attention_layer_self_cross_and_causality():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=4).eval()
    x = torch.randn(2, 6, 16)
    y = attn(x, causal=True)
    x2 = x.clone()
    x2[:, 4:] += 1.0  # change the future
    y2 = attn(x2, causal=True)
    assert torch.allclose(y[:, :4], y2[:, :4], atol=1e-6)
    assert not torch.allclose(y[:, 4:], y2[:, 4:])
    cross = Attention(16, num_heads=4, context_dim=8)
    assert cross(x, context=torch.randn(2, 3, 8)).shape == (2, 6, 16)
    with pytest.raises(ValueError, match='context'):
        cross(x)
    with pytest.raises(ValueError, match='divisible'):
        Attention(10, num_heads=4)


def test_flash_backend_refuses_cpu_inputs():
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(RuntimeError, match='flash'):
        scaled_dot_product(q, q, q, backend='flash')
