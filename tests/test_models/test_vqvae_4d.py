"""OccSora's 4D VQ-VAE and its VideoGPT-style 3D blocks."""
import os

import numpy as np
import pytest
import torch

from occworld4d.models.tokenizers import TOKEN_PRESETS, OccSoraVQVAE
from occworld4d.models.tokenizers.blocks_3d import (SamePadConv3d, SamePadConvTranspose3d,
                                                    stride_schedule)
from occworld4d.registry import MODELS


def _miou(pred, gt, free=17):
    """Mean IoU over the classes present in gt, free excluded."""
    ious = []
    for c in gt.unique().tolist():
        if c != free:
            inter = ((pred == c) & (gt == c)).sum().item()
            ious.append(inter / ((pred == c) | (gt == c)).sum().item())
    return float(np.mean(ious))


def real_crop(real_root):
    """(32, 32, 16) window of the real Occ3D frame with 9 of the 18 classes."""
    path = os.path.join(real_root, 'occ3d_nuscenes/gts/scene-1077/'
                        '29796060110c4163b07f06eff4af0753/labels.npz')
    return torch.from_numpy(np.load(path)['semantics'][12:44, 40:72].astype(np.int64))

TINY = dict(height=4, embed_dim=2, hidden=16, num_res_blocks=1, z_channels=8,
            quantizer=dict(num_codes=16))


def test_reference_parameter_count_and_tokens():
    with torch.device('meta'):
        model = OccSoraVQVAE()
    assert sum(p.numel() for p in model.parameters()) == 137_369_744
    assert model.token_shape(32, 200, 200) == (4, 25, 25)
    assert len(model.encoder.convs) == 3 and len(model.decoder.convts) == 3
    with pytest.raises(ValueError, match='not divisible'):
        model.token_shape(30, 200, 200)


def test_stride_schedule_hand_examples():
    assert stride_schedule((8, 8, 8)) == ((2, 2, 2),) * 3
    assert stride_schedule((4, 8, 8)) == ((2, 2, 2), (2, 2, 2), (1, 2, 2))
    assert stride_schedule((1, 2, 2)) == ((1, 2, 2),)
    with pytest.raises(ValueError, match='powers of two'):
        stride_schedule((3, 8, 8))


@pytest.mark.parametrize('name', sorted(TOKEN_PRESETS))
def test_token_presets(name):
    D, T, H, W = (int(v) for v in name.split('x'))
    with torch.device('meta'):
        ref = OccSoraVQVAE(token_preset=name)
    assert ref.token_shape(32, 200, 200) == (T, H, W)
    # the same downsampling at tiny width on a small clip gives that grid
    model = OccSoraVQVAE(token_preset=name, **TINY)
    dt, dh, dw = TOKEN_PRESETS[name]
    voxels = torch.randint(0, 18, (1, 2 * dt, 2 * dh, 3 * dw, 4))
    latent = model.encode(voxels)
    assert latent.shape == (1, 8, 2, 2, 3)
    assert model.encode_to_indices(voxels).shape == (1, 2, 2, 3)
    assert model.decode(latent).shape == (1, 18, 2 * dt, 2 * dh, 3 * dw, 4)
    assert D == 128


def test_same_pad_convs_are_inverse_in_shape():
    x = torch.randn(1, 3, 4, 8, 6)
    down = SamePadConv3d(3, 5, 4, stride=(1, 2, 2))
    up = SamePadConvTranspose3d(5, 3, 4, stride=(1, 2, 2))
    assert down(x).shape == (1, 5, 4, 4, 3)
    assert up(down(x)).shape == x.shape


def test_forward_backward_round_trip_and_errors():
    model = MODELS.build(dict(type='OccSoraVQVAE', downsample=(2, 2, 2), **TINY))
    voxels = torch.randint(0, 18, (2, 4, 8, 8, 4))
    losses = model(dict(voxels=voxels), mode='loss')
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    assert torch.isfinite(total) and losses['code_perplexity'] >= 1
    total.backward()
    assert model.encoder.convs[0].conv.weight.grad.abs().sum() > 0
    assert model.quantizer.embedding.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        idx = model.encode_to_indices(voxels)
        entries = model.quantizer.get_codebook_entry(idx)
        assert torch.allclose(model.encode(voxels), entries, atol=1e-6)
        assert torch.allclose(model.decode_indices(idx), model.decode(entries), atol=1e-6)
    with pytest.raises(ValueError, match='not divisible'):
        model.encode(torch.randint(0, 18, (1, 3, 8, 8, 4)))
    with pytest.raises(ValueError, match='unknown token_preset'):
        OccSoraVQVAE(token_preset='128x1x1x1', **TINY)


def test_overfits_a_real_occ3d_clip(real_root):
    """120 AdamW steps on a 2-frame clip of a 32 x 32 x 16 crop of the real frame (second
    frame shifted by one voxel): mIoU over the non-free classes present >= 0.85 (0.91
    measured)."""
    torch.manual_seed(0)
    crop = real_crop(real_root)
    voxels = torch.stack([crop, torch.roll(crop, 1, 0)])[None]  # (1, 2, 32, 32, 16)
    model = OccSoraVQVAE(hidden=64, num_res_blocks=1, downsample=(1, 2, 2), z_channels=32,
                         quantizer=dict(num_codes=64, restart_dead=True, dead_window=5))
    opt = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.0)
    first = None
    for _ in range(120):
        losses = model.loss(dict(voxels=voxels))
        total = sum(v for k, v in losses.items() if k.startswith('loss_'))
        first = first if first is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < 0.2 * first
    model.eval()
    with torch.no_grad():
        pred = model(dict(voxels=voxels)).argmax(1)
    assert _miou(pred, voxels) >= 0.85
    assert np.isfinite(total.item())
