"""Embeddings of the DiTs and the generic DiT block: hand-checked values, adaLN-Zero identity,
per-token conditioning."""
import math

import pytest
import torch

from occworld4d.models.denoisers.dit import DiTBlock, FinalLayer, unpatchify
from occworld4d.models.layers import PatchEmbed2d, sincos_1d, sincos_2d, timestep_embedding


def test_timestep_embedding_by_hand():
    e = timestep_embedding(torch.tensor([0., 2.]), 4, max_period=100.0)
    # half = 2, freqs = [1, 100 ** -0.5 = 0.1]; layout [cos(t f0), cos(t f1), sin(t f0), sin(t f1)]
    expected = torch.tensor([[1., 1., 0., 0.],
                             [math.cos(2), math.cos(0.2), math.sin(2), math.sin(0.2)]])
    assert torch.allclose(e, expected, atol=1e-6)
    assert timestep_embedding(torch.tensor([1.]), 5).shape == (1, 5)


def test_sincos_tables_by_hand():
    t = sincos_1d(4, torch.tensor([0., 1.]))
    # omega = [1, 1 / 100]; [sin(p w0), sin(p w1), cos(p w0), cos(p w1)]
    assert torch.allclose(t[1], torch.tensor([math.sin(1), math.sin(0.01), math.cos(1),
                                              math.cos(0.01)], dtype=torch.float64))
    grid = sincos_2d(8, 2, 3)  # tokens row-major over (2 rows, 3 columns)
    assert grid.shape == (6, 8)
    # token 4 = row 1, column 1; first half encodes the column, second half the row.
    assert torch.allclose(grid[4, :4], sincos_1d(4, torch.tensor([1.]))[0].float())
    assert torch.allclose(grid[5, 4:], sincos_1d(4, torch.tensor([1.]))[0].float())
    assert torch.allclose(grid[2, 4:], sincos_1d(4, torch.tensor([0.]))[0].float())
    with pytest.raises(ValueError, match='divisible by 4'):
        sincos_2d(6, 2, 2)


def test_patch_embed_and_unpatchify_round_trip():
    pe = PatchEmbed2d(3, 12, 2)
    pe.proj.weight.data.zero_()
    pe.proj.bias.data.zero_()
    # Identity-like kernel: token channel (c, i, j) reads pixel (i, j) of channel c.
    for c in range(3):
        for i in range(2):
            for j in range(2):
                pe.proj.weight.data[i * 6 + j * 3 + c, c, i, j] = 1
    x = torch.randn(2, 3, 4, 6)
    tokens = pe(x)  # (2, 6, 12)
    assert tokens.shape == (2, 6, 12)
    assert torch.equal(unpatchify(tokens, 2, (2, 3)), x)
    with pytest.raises(ValueError, match='multiples of 2'):
        pe(torch.randn(1, 3, 5, 4))


def test_adaln_zero_block_is_identity_and_conditions_per_token():
    torch.manual_seed(0)
    blk = DiTBlock(16, 2)
    blk.reset_parameters()
    x = torch.randn(2, 5, 16)
    assert torch.equal(blk(x, torch.randn(2, 16)), x)  # zero gates
    torch.nn.init.normal_(blk.adaLN_modulation[-1].weight, std=0.1)
    c = torch.randn(2, 16)
    per_token = c[:, None].expand(-1, 5, -1).clone()
    assert torch.allclose(blk(x, c), blk(x, per_token), atol=1e-6)  # (B, C) == broadcast
    per_token[:, 3] += 1.0  # change the condition of token 3 only
    out_a, out_b = blk(x, c), blk(x, per_token)
    assert not torch.allclose(out_a[:, 3], out_b[:, 3], atol=1e-4)
    final = FinalLayer(16, 2, 4)
    final.reset_parameters()
    assert torch.count_nonzero(final(x, c)) == 0 and final(x, c).shape == (2, 5, 16)
