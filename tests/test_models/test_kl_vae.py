"""UniScene's occupancy KL-VAE: size, shapes, KL (correct and quirk), training step."""
import math
import os

import numpy as np
import pytest
import torch

from occworld4d.models.tokenizers import UniSceneOccVAE
from occworld4d.registry import MODELS

TINY = dict(height=4, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,),
            resolution=16, dec_hidden=8, dec_ch_mult=(2, 1), dec_res_blocks=1)


def test_reference_parameter_count():
    with torch.device('meta'):
        model = UniSceneOccVAE()
    assert sum(p.numel() for p in model.parameters()) == 11_290_264
    assert len(model.encoder.down[2].attn) == 2  # axial attention at 50 x 50
    assert len(model.decoder.convts) == 2  # 50 -> 100 -> 200


def test_shapes_and_deterministic_encode():
    model = MODELS.build(dict(type='UniSceneOccVAE', **TINY)).eval()
    voxels = torch.randint(0, 18, (2, 3, 16, 12, 4))
    mu, logvar = model.posterior(voxels)
    assert mu.shape == logvar.shape == (2, 4, 3, 8, 6)
    assert torch.equal(model.encode(voxels), mu)  # posterior mean
    torch.manual_seed(1)
    sample = model.encode(voxels, sample=True)
    assert not torch.equal(sample, mu)
    assert model.decode(mu).shape == (2, 18, 3, 16, 12, 4)
    with pytest.raises(ValueError, match=r'\(B, 4, T, h, w\)'):
        model.decode(mu[:, :2])
    with pytest.raises(ValueError, match='divisible'):
        model.encode(torch.randint(0, 18, (1, 1, 15, 16, 4)))


def test_decoder_mixes_time():
    """The temporal decoder's axial t attention lets frame 0's latent change frame 1."""
    model = UniSceneOccVAE(**TINY).eval()
    z = torch.randn(1, 4, 2, 8, 8)
    z2 = z.clone()
    z2[:, :, 0] += 1.0
    with torch.no_grad():
        diff = (model.decode(z)[:, :, 1] - model.decode(z2)[:, :, 1]).abs().max()
    assert diff > 0


def test_kl_correct_and_quirk_hand_values():
    model = UniSceneOccVAE(**TINY)
    mu = torch.tensor([1.0, 0.0])
    logvar = torch.tensor([0.0, math.log(4.0)])
    # correct: 0.5 (mu^2 + var - 1 - logvar): (0.5 * 1, 0.5 * (4 - 1 - log 4)), mean
    expect = (0.5 + 0.5 * (3 - math.log(4.0))) / 2
    assert model.kl_loss(mu, logvar).item() == pytest.approx(expect, rel=1e-6)
    model.kl_quirk = True
    # quirk: -0.5 (1 + s - e^s - mu^2) with s = exp(logvar / 2) = (1, 2)
    quirk = (-0.5 * (1 + 1 - math.e - 1) - 0.5 * (1 + 2 - math.exp(2.0))) / 2
    assert model.kl_loss(mu, logvar).item() == pytest.approx(quirk, rel=1e-6)


def test_forward_backward():
    model = UniSceneOccVAE(**TINY)
    voxels = torch.randint(0, 18, (1, 2, 16, 16, 4))
    losses = model(dict(voxels=voxels), mode='loss')
    assert set(losses) == {'loss_ce', 'loss_lovasz', 'loss_kl'}
    sum(losses.values()).backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert model.decoder.conv_in.weight.grad.abs().sum() > 0


def test_overfits_a_real_occ3d_crop(real_root):
    """120 AdamW steps on a 32 x 32 x 16 crop of the real frame (2 frames, the second
    shifted by one voxel): mIoU over the non-free classes present >= 0.6 (0.67 measured)."""
    path = os.path.join(real_root, 'occ3d_nuscenes/gts/scene-1077/'
                        '29796060110c4163b07f06eff4af0753/labels.npz')
    crop = torch.from_numpy(np.load(path)['semantics'][12:44, 40:72].astype(np.int64))
    voxels = torch.stack([crop, torch.roll(crop, 1, 0)])[None]  # (1, 2, 32, 32, 16)
    torch.manual_seed(0)
    model = UniSceneOccVAE(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16,),
                           resolution=32, latent_channels=8, dec_hidden=32,
                           dec_ch_mult=(2, 1), dec_res_blocks=1, kl_weight=1e-3)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(120):
        losses = model.loss(dict(voxels=voxels))
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(dict(voxels=voxels)).argmax(1)
    ious = []
    for c in voxels.unique().tolist():
        if c != 17:
            inter = ((pred == c) & (voxels == c)).sum().item()
            ious.append(inter / ((pred == c) | (voxels == c)).sum().item())
    assert float(np.mean(ious)) >= 0.6
