"""The feature extractor sees voxel-level artefacts (tiny config, a short CPU training).

FID between held-out synthetic-city windows and a second draw of the same distribution must
grow with the rate of voxel label noise and when vehicles are removed. The format-5 extractor
(global layout feature only: ``local_parts=()``, no reconstruction loss) is blind to both
(docs/evaluation.md): the same check fails for it, which is what makes the check meaningful.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import occworld4d.models  # noqa: F401  (OccDataPreprocessor)
from occworld4d.evaluation.functional import fid
from occworld4d.evaluation.sanity import label_noise
from occworld4d.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs/evaluation/feature_extractor_2d_1xb2-10e_synthetic-city-tiny.py')
VEHICLE = 10  # dynamiccity_carlasc
BLIND = dict(local_parts=(), loss_weights=dict(recon=0.0))


def _windows(cfg, seed, n, frames=4):
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, seed=seed, num_scenes=n,
                             num_frames=frames))
    items = [ds[i] for i in range(n)]
    return (torch.stack([it['inputs']['voxels'] for it in items]).long(),  # (N, T, X, Y, Z)
            torch.stack([it['inputs']['command'] for it in items]))


@pytest.fixture(scope='module')
def data():
    cfg = Config.fromfile(CFG)
    return cfg, _windows(cfg, 0, 16), _windows(cfg, 1, 24)[0], _windows(cfg, 2, 24)[0]


def _trained(cfg, train, **override):
    torch.manual_seed(0)
    # global part 16 wide (not 64): with 96 frame vectors per set the FID bias of a 64-wide
    # part would hide everything else
    model = MODELS.build(dict(cfg.model.to_dict(), feat_dim=16, **override))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim_wrapper.optimizer.lr)
    vox, cmd = train
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):
        idx = torch.randint(0, len(vox), (2, ), generator=g)
        losses = model.loss(dict(voxels=vox[idx], command=cmd[idx]))
        opt.zero_grad()
        sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
        opt.step()
    return model.eval()


def _fids(model, ref, other):
    def feats(v):
        f = model.extract(v)['frame_feats']  # (N, T, D)
        return f.reshape(-1, f.shape[-1]).numpy()
    real = feats(ref)
    out = {rate: fid(real, feats(label_noise(other, rate, 12, seed=3)) if rate else feats(other))
           for rate in (0.0, 0.02, 0.05, 0.1)}
    out['no vehicles'] = fid(real, feats(torch.where(other == VEHICLE, 0, other)))
    return out


def test_extractor_fid_grows_with_voxel_noise_and_missing_vehicles(data):
    cfg, train, ref, other = data
    model = _trained(cfg, train)
    assert model.feat_dim == 16 + 2 * 12  # global 16 + class histogram 12 + recon NLL 12
    f = _fids(model, ref, other)
    # measured: 2.51 / 2.72 / 3.92 / 7.34, no vehicles 3.40 (format 5: 1.58 +- 0.02 for all)
    assert f[0.0] < f[0.02] < f[0.05] < f[0.1], f
    assert f[0.05] > 1.3 * f[0.0] and f[0.1] > 2 * f[0.0], f
    assert f['no vehicles'] > 1.25 * f[0.0], f


def test_blind_format5_extractor_fails_the_check(data):
    cfg, train, ref, other = data
    model = _trained(cfg, train, **BLIND)
    assert model.feat_dim == 16 and model.local_norm is None
    f = _fids(model, ref, other)
    assert not (f[0.1] > 2 * f[0.0] and f['no vehicles'] > 1.25 * f[0.0]), f


def test_reconstruction_nll_splits_the_loss_by_class():
    cfg = Config.fromfile(CFG)
    for kind in ('OccFeatureExtractor2D', 'OccFeatureExtractor3D'):
        model = MODELS.build(dict(cfg.model.to_dict(), type=kind, base_channels=4, feat_dim=8))
        vox = torch.randint(0, 12, (3, 8, 8, 4))
        h = model.stages(vox)[model.recon_stage]
        nll = model.recon_nll(h, vox)  # (N, K)
        assert nll.shape == (3, 12) and (nll >= 0).all()
        if kind == 'OccFeatureExtractor3D':  # rows sum to each frame's cross-entropy
            logits = model.recon_head(torch.nn.functional.interpolate(h, size=(8, 8, 4)))
            ce = torch.nn.functional.cross_entropy(logits, vox, reduction='none')
            torch.testing.assert_close(nll.sum(1), ce.flatten(1).mean(1))
        absent = torch.where(vox == 5, 0, vox)
        assert (model.recon_nll(model.stages(absent)[model.recon_stage], absent)[:, 5] == 0).all()
    with pytest.raises(ValueError, match='local_parts'):
        MODELS.build(dict(cfg.model.to_dict(), local_parts=('colour', )))
    with pytest.raises(ValueError, match='recon'):
        MODELS.build(dict(cfg.model.to_dict(), loss_weights=dict(recon=0.0)))
