"""DynamicCity's loss differences from the reference (issue 14, difference 4) and their
switches, pinned to hand-computed values; the reference configs turn them on, ours keep them
off (configs/dynamiccity/README.md, "Differences from the reference and their switches").

* ``GaussianDiffusion(vb_average='all')``: the VB term averaged over every rollout cell,
  padding included, as 3DTopia/DynamicCity @ eaf0c6e ``training_losses`` (only the MSE masked);
* ``HexPlaneVAE(class_weight_eps=1e-10)``: the reference's CE class weights
  (``calculate_ce_weight``: an unseen class weighs (max p / 1e-10) ** (1/3)).
"""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import occworld4d  # noqa: F401
from occworld4d.diffusion import GaussianDiffusion
from occworld4d.models.losses import VoxelCrossEntropyLoss, frequency_class_weights
from occworld4d.models.tokenizers.rollout import PaddedRollout
from occworld4d.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'dynamiccity')


class FixedOutput(torch.nn.Module):
    """Returns eps = true noise + ``offset`` and one learnable variance value everywhere."""

    def __init__(self, noise, offset, var_value):
        super().__init__()
        self.eps = noise + offset
        self.var = torch.nn.Parameter(torch.tensor(float(var_value), dtype=torch.float64))

    def forward(self, x_t, t, **cond):
        return torch.cat([self.eps, self.var.expand_as(self.eps)], dim=1)


def _gauss_kl_bits(m1, v1, m2, v2):
    """KL(N(m1, v1) || N(m2, v2)) in bits, by the closed form."""
    return 0.5 * (-1 + math.log(v2 / v1) + v1 / v2 + (m1 - m2)**2 / v2) / math.log(2)


def test_vb_average_all_is_the_reference_average_by_hand():
    """3 valid cells + 1 padding cell (x0 = 0 there, as the rollout canvas): the default
    averages the VB over the 3 valid cells, 'all' over the 4, the padding cell counting with
    the reference network's output there (eps 0, variance value 0) at the un-zeroed x_t."""
    x0 = torch.tensor([[[0.2, -0.4, 0.6, 0.0]]], dtype=torch.float64)  # (B, C, cells)
    noise = torch.tensor([[[0.5, -1.0, 0.3, 0.8]]], dtype=torch.float64)
    mask = torch.tensor([True, True, True, False]).reshape(1, 1, 4)
    offset = torch.tensor([[[0.2, 0.2, 0.2, float('inf')]]], dtype=torch.float64)
    t = torch.tensor([700])
    ours = GaussianDiffusion(learn_sigma=True)
    ref = GaussianDiffusion(learn_sigma=True, vb_average='all')
    assert ours.vb_average == 'valid'

    # the schedule by hand from its betas
    betas = ours.schedule.betas.tolist()
    abar = [1.0]
    for b in betas:
        abar.append(abar[-1] * (1 - b))
    s = 700
    beta, a_t, a_prev = betas[s], abar[s + 1], abar[s]
    post_var = beta * (1 - a_prev) / (1 - a_t)
    coef1 = beta * math.sqrt(a_prev) / (1 - a_t)
    shift = coef1 * math.sqrt(1 - a_t) / math.sqrt(a_t)  # mean error per unit of eps error
    # valid cells: eps error 0.2, variance value +1 = beta_t
    kl_valid = _gauss_kl_bits(0.0, post_var, shift * 0.2, beta)
    # padding cell: eps 0 (error = -noise), variance value 0 = sqrt(beta_t * beta~_t)
    kl_pad = _gauss_kl_bits(0.0, post_var, shift * -0.8, math.sqrt(beta * post_var))

    out = {}
    for name, engine in (('valid', ours), ('all', ref)):
        model = FixedOutput(noise, offset, 1.0)
        out[name] = engine.training_losses(model, x0, t, mask=mask, noise=noise,
                                           zero_masked_inputs=True)
        # the VB trains only the variance values: 3 valid cells of 1 value each
        out[name]['vb'].sum().backward()
        out[name]['var_grad'] = model.var.grad.item()
    assert out['valid']['vb'].item() == pytest.approx(kl_valid, rel=1e-9)
    assert out['all']['vb'].item() == pytest.approx((3 * kl_valid + kl_pad) / 4, rel=1e-9)
    assert kl_pad > 10 * kl_valid  # the two averages really differ
    # the MSE stays masked in both: 0.2 ** 2 on the valid cells
    for name in ('valid', 'all'):
        assert out[name]['mse'].item() == pytest.approx(0.04, rel=1e-12)
        assert math.isfinite(out[name]['loss'].item())
    # the padding cell is a constant: the VB gradient is scaled by valid / all = 3 / 4
    assert out['all']['var_grad'] == pytest.approx(0.75 * out['valid']['var_grad'], rel=1e-12)
    assert out['valid']['var_grad'] != 0
    # without a mask both are the plain mean over every element
    model = FixedOutput(noise, torch.full_like(noise, 0.2), 1.0)
    a = ours.training_losses(model, x0, t, noise=noise)['vb']
    b = ref.training_losses(model, x0, t, noise=noise)['vb']
    assert a.item() == b.item()
    with pytest.raises(ValueError, match="vb_average must be one of \\('valid', 'all'\\)"):
        GaussianDiffusion(learn_sigma=True, vb_average='padding')


def test_vb_gradient_factor_on_the_carlasc_rollout():
    """The CarlaSC rollout: 5664 of 76 x 76 = 5776 cells hold plane values; the reference's VB
    gradient is ours x 5664 / 5776 (ours weights it 1.0198x)."""
    mask = PaddedRollout((8, 64, 64, 4)).valid_mask()
    assert mask.shape == (76, 76) and int(mask.sum()) == 5664
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 1, 76, 76, generator=g, dtype=torch.float64) * mask
    noise = torch.randn(1, 1, 76, 76, generator=g, dtype=torch.float64)
    t = torch.tensor([400])
    grads = {}
    for avg in ('valid', 'all'):
        model = FixedOutput(noise, torch.full_like(noise, 0.1), 0.5)
        GaussianDiffusion(learn_sigma=True, vb_average=avg).training_losses(
            model, x0, t, mask=mask[None, None], noise=noise)['vb'].sum().backward()
        grads[avg] = model.var.grad.item()
    assert grads['all'] / grads['valid'] == pytest.approx(5664 / 5776, rel=1e-12)


def test_reference_ce_class_weights_by_hand():
    # p = (0.8, 0.1, 0, 0.1): ours (0.8 / 0.1) ** (1/3) = 2 and 0 for the unseen class; the
    # reference (0.8 / (0 + 1e-10)) ** (1/3) = 2000 for it, the others 2 up to 1e-9
    ours = frequency_class_weights([0.8, 0.1, 0.0, 0.1])
    ref = frequency_class_weights([0.8, 0.1, 0.0, 0.1], eps=1e-10)
    torch.testing.assert_close(ours, torch.tensor([1.0, 2.0, 0.0, 2.0]))
    torch.testing.assert_close(ref, torch.tensor([1.0, 2.0, 2000.0, 2.0]), rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match='eps must be > 0 or None'):
        frequency_class_weights([1.0, 2.0], eps=0.0)
    with pytest.raises(ValueError, match='class_weight_eps needs class_frequencies'):
        VoxelCrossEntropyLoss(class_weight_eps=1e-10)
    # a target of the unseen class: the weighted mean of the per-voxel CE by hand
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])  # (1, K=4, 2)
    target = torch.tensor([[0, 2]])
    ce = [-torch.log_softmax(logits[0, :, i], 0)[target[0, i]].item() for i in range(2)]
    got_ours = VoxelCrossEntropyLoss(class_frequencies=[0.8, 0.1, 0.0, 0.1])(logits, target)
    got_ref = VoxelCrossEntropyLoss(class_frequencies=[0.8, 0.1, 0.0, 0.1],
                                    class_weight_eps=1e-10)(logits, target)
    assert got_ours.item() == pytest.approx(ce[0], rel=1e-6)  # the unseen voxel weighs 0
    assert got_ref.item() == pytest.approx((ce[0] + 2000 * ce[1]) / 2001, rel=1e-6)


def _model(cfg):
    with DefaultScope.overwrite_default_scope('occworld4d'):
        return MODELS.build(cfg)


def test_configs_reference_behaviour_on_ours_off():
    """The configs of converted checkpoints have the reference's behaviour (differences 4 and
    5); the trained CarlaSC configs keep ours."""
    from occworld4d.converters import dynamiccity as dc
    assert dc.VAE_CONFIG.endswith('dynamiccity_vae_reference_carlasc.py')
    assert dc.DIT_CONFIG.endswith('dynamiccity_dit_reference_carlasc.py')
    ref_vae = Config.fromfile(osp.join(ROOT, dc.VAE_CONFIG)).model
    our_vae = Config.fromfile(osp.join(CFG, 'dynamiccity_vae_8xb1-100e_carlasc.py')).model
    assert ref_vae.class_weight_eps == 1e-10 and our_vae.get('class_weight_eps') is None
    w_ref = _model(ref_vae).loss_ce.class_weight
    w_ours = _model(our_vae).loss_ce.class_weight
    # the reference's value for CarlaSC's slot 11, (max p / 1e-10) ** (1/3)
    counts = ref_vae.class_frequencies
    expected = (max(counts) / (sum(counts) + 1e-10) / 1e-10)**(1 / 3)
    assert expected == pytest.approx(2069.432, abs=1e-3)
    assert w_ref[11].item() == pytest.approx(expected, rel=1e-6) and w_ours[11].item() == 0
    torch.testing.assert_close(w_ref[:11], w_ours[:11], rtol=1e-6, atol=0)

    ref_dit = Config.fromfile(osp.join(ROOT, dc.DIT_CONFIG)).model
    our_dit = Config.fromfile(osp.join(CFG, 'dynamiccity_dit_8xb16-1200e_carlasc.py')).model
    assert ref_dit.diffusion.vb_average == 'all'
    assert our_dit.diffusion.get('vb_average', 'valid') == 'valid'
    # difference 5: every condition off, nothing dropped, no guidance (conf/dit/model/dit.yaml)
    assert tuple(ref_dit.denoiser.conditions) == () and ref_dit.cond_drop_prob == 0.0
    assert ref_dit.sample_cfg.guidance_scale == 1.0 and ref_dit.context_stride is None
    assert len(our_dit.denoiser.conditions) == 4 and our_dit.cond_drop_prob == 0.1


def test_vb_average_reaches_the_generator_loss():
    """Through the tiny DynamicCity generator config: 'all' changes the VB, not the MSE."""
    cfg = Config.fromfile(osp.join(CFG, 'dynamiccity_dit_tiny_synthetic-city.py')).model
    cfg.tokenizer_ckpt = None
    out = {}
    for avg in ('valid', 'all'):
        cfg.diffusion.vb_average = avg
        torch.manual_seed(0)
        model = _model(cfg)
        assert model.diffusion.vb_average == avg
        T, (X, Y, Z) = model.tokenizer.num_frames, model.tokenizer.spatial_size
        voxels = torch.randint(0, model.tokenizer.num_classes, (2, T, X, Y, Z))
        torch.manual_seed(1)
        with torch.no_grad():
            out[avg] = model.loss(dict(voxels=voxels), None)
    assert out['valid']['mse'].item() == out['all']['mse'].item()
    assert out['valid']['vb'].item() != out['all']['vb'].item()
