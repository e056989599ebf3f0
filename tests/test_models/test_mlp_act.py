"""The MLP activation switch of the DiT block (``mlp_act``), pinned to hand-computed values.

Exact GELU(x) = x * Phi(x) = x / 2 * (1 + erf(x / sqrt 2)); at 1: 0.5 * (1 + erf(0.70711))
= 0.5 * 1.6826895 = 0.8413447. The tanh form 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
at 1: tanh(0.7978846 * 1.044715) = tanh(0.8335624) = 0.6823840 -> 0.8411920.
"""
import pytest
import torch

from occworld4d.models.denoisers.dit import DiTBlock, Mlp, build_mlp_activation


@pytest.mark.parametrize('name,value', [('gelu', 0.8413447), ('gelu_tanh', 0.8411920)])
def test_activation_values(name, value):
    act = build_mlp_activation(name)
    out = act(torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64))
    assert out[0].item() == pytest.approx(value, abs=1e-7)
    assert out[1].item() == pytest.approx(value - 1.0, abs=1e-7)  # GELU(-x) = GELU(x) - x
    assert out[2].item() == 0.0


def test_unknown_activation():
    with pytest.raises(ValueError, match="mlp_act must be one of"):
        build_mlp_activation('relu')


def test_mlp_and_block_thread_the_switch():
    mlp = Mlp(1, 1, mlp_act='gelu')
    with torch.no_grad():
        mlp.fc1.weight.fill_(1.0), mlp.fc1.bias.zero_()
        mlp.fc2.weight.fill_(1.0), mlp.fc2.bias.zero_()
    assert mlp(torch.ones(1, 1)).item() == pytest.approx(0.8413447, abs=1e-6)
    assert Mlp(4, 8).act.approximate == 'tanh'  # the default stays DiT's
    block = DiTBlock(8, 2, mlp_act='gelu')
    assert block.mlp.act.approximate == 'none'
    assert DiTBlock(8, 2).mlp.act.approximate == 'tanh'
