import pytest
import torch
import torch.nn.functional as F

from occworld4d.models.losses import (LovaszSoftmaxLoss, VoxelCrossEntropyLoss,
                                      frequency_class_weights, gaussian_kl, lovasz_softmax,
                                      lovasz_softmax_lean)


def test_lovasz_hand_computed():
    # Two voxels, two classes; both labelled 0. Probabilities of class 0: 0.9 and 0.6.
    p0 = torch.tensor([0.9, 0.6])
    logits = torch.stack([p0.log(), (1 - p0).log()])[None]  # (1, 2, 2)
    target = torch.zeros(1, 2, dtype=torch.long)
    # Class 0 present: errors sorted (0.4, 0.1); Jaccard grad for fg=(1,1): (1/2, 1/2)
    # -> loss = 0.4 * 0.5 + 0.1 * 0.5 = 0.25 (class 1 absent, skipped with 'present').
    assert lovasz_softmax(logits, target).item() == pytest.approx(0.25, abs=1e-6)
    # Perfect prediction -> 0; ignore_index removes voxels.
    perfect = torch.tensor([[[10.0, 10.0], [-10.0, -10.0]]])
    assert lovasz_softmax(perfect, target).item() == pytest.approx(0.0, abs=1e-4)
    assert LovaszSoftmaxLoss(loss_weight=2.0, ignore_index=0)(logits, target).item() == 0.0


@pytest.mark.parametrize('ignore', [None, 255])
def test_lean_lovasz_matches_autograd_with_ignore_index(ignore):
    torch.manual_seed(0)
    logits = (3 * torch.randn(2, 4, 3, 5, 6)).requires_grad_(True)  # (B, K, T, X, Y)
    target = torch.randint(0, 3, (2, 3, 5, 6))  # class 3 absent: skipped ('present')
    if ignore is not None:
        target[:, :, :2] = ignore  # 40% of the voxels
    ref = lovasz_softmax(logits, target, ignore_index=ignore)
    g_ref, = torch.autograd.grad(ref, logits)
    lean = LovaszSoftmaxLoss(ignore_index=ignore, lean=True)(logits, target)
    g_lean, = torch.autograd.grad(lean, logits)
    assert lean.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(g_lean, g_ref, atol=1e-7)
    if ignore is not None:  # ignored voxels get no gradient
        assert torch.count_nonzero(g_lean[:, :, :, :2]) == 0
        assert torch.count_nonzero(g_lean[:, :, :, 2:]) > 0
    # Every voxel ignored: 0 with a zero gradient (as the autograd version).
    out = lovasz_softmax_lean(logits, torch.full_like(target, 255), ignore_index=255)
    g, = torch.autograd.grad(out, logits)
    assert out.item() == 0.0 and torch.count_nonzero(g) == 0
    assert LovaszSoftmaxLoss(classes='all', lean=True).lean is False  # 'all': autograd only


@pytest.mark.parametrize('max_elements', [1, 120, 1 << 24])
def test_batched_lovasz_chunks_match_per_class_autograd(max_elements):
    # The lean path scores the present classes in (C, N) blocks of at most max_elements
    # values: 1 and 120 force one and two classes per block (N = 60), 1 << 24 all at once.
    from occworld4d.models.losses.lovasz import _lovasz_value_and_grad
    torch.manual_seed(1)
    logits = (2 * torch.randn(60, 5)).requires_grad_(True)  # (N, K)
    labels = torch.randint(0, 4, (60,))  # class 4 absent
    ref = lovasz_softmax(logits.t()[None], labels[None])  # the per-class autograd version
    g_ref, = torch.autograd.grad(ref, logits)
    probs = logits.detach().softmax(1)
    loss, grad_p = _lovasz_value_and_grad(probs, labels, max_elements=max_elements)
    g = probs * (grad_p - (grad_p * probs).sum(1, keepdim=True))  # through the softmax
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(g, g_ref, atol=1e-7)
    assert torch.count_nonzero(grad_p[:, 4]) == 0  # absent class: no gradient


def test_lovasz_gradient_flows():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    lovasz_softmax(logits, torch.randint(0, 3, (2, 4, 4))).backward()
    assert logits.grad.abs().sum() > 0


def test_frequency_weights_and_weighted_ce():
    w = frequency_class_weights([0.8, 0.1, 0.0, 0.1])
    assert torch.allclose(w, torch.tensor([1.0, 2.0, 0.0, 2.0]), atol=1e-6)  # (0.8/0.1)^(1/3) = 2
    loss = VoxelCrossEntropyLoss(class_frequencies=[0.8, 0.1, 0.0, 0.1])
    logits = torch.zeros(1, 4, 2)
    target = torch.tensor([[0, 1]])
    # Uniform logits: per-voxel CE = log 4; the weighted mean is still log 4.
    assert loss(logits, target).item() == pytest.approx(torch.log(torch.tensor(4.0)).item())
    with pytest.raises(ValueError):
        VoxelCrossEntropyLoss(class_weight=[1, 1], class_frequencies=[1, 1])


@pytest.mark.parametrize('freq', [None, [0.5, 0.3, 0.2]])
def test_ce_matches_torch_mean_and_is_zero_when_all_ignored(freq):
    torch.manual_seed(0)
    loss = VoxelCrossEntropyLoss(2.0, class_frequencies=freq, ignore_index=255)
    logits = torch.randn(2, 3, 5, requires_grad=True)
    target = torch.tensor([[0, 1, 2, 255, 1], [2, 2, 255, 0, 0]])
    ref = 2.0 * F.cross_entropy(logits, target, weight=loss.class_weight, ignore_index=255)
    assert loss(logits, target).item() == pytest.approx(ref.item(), rel=1e-6)
    # Every voxel ignored (an all-False valid_mask): 0 with a zero gradient, not NaN.
    out = loss(logits, torch.full_like(target, 255))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_gaussian_kl_closed_form():
    mu, logvar = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    # 0.5 * (mu^2 + e^lv - 1 - lv) = (0.5, 0.5 * (e - 2))
    expected = torch.tensor([0.5, 0.5 * (torch.e - 2)])
    assert torch.allclose(gaussian_kl(mu, logvar, 'sum'), expected.sum())
    assert torch.allclose(gaussian_kl(mu, logvar, 'mean'), expected.mean())
    assert gaussian_kl(torch.zeros(3), torch.zeros(3)).item() == 0.0
