"""Feature extractors train, carry a version, and GenerationMetric uses them consistently."""
import numpy as np
import pytest
import torch

import occworld4d.models  # noqa: F401  (OccDataPreprocessor)
from occworld4d.evaluation import (GenerationMetric, OccFeatureExtractor2D,
                                   OccFeatureExtractor3D, VersionMismatchError)
from occworld4d.evaluation.metrics import save_reference_features
from occworld4d.registry import MODELS

K, FREE = 5, 0
TINY = dict(num_classes=K, free_label=FREE, feat_dim=16, base_channels=4, num_stages=2,
            layout_grid=2)


def toy_windows(n, T=3, seed=0):
    """Road floor + one block that moves according to the command (0..3)."""
    g = torch.Generator().manual_seed(seed)
    vox = torch.zeros(n, T, 8, 8, 4, dtype=torch.long)
    vox[..., 0] = 1  # road
    command = torch.randint(0, 4, (n,), generator=g)
    step = {0: (0, 0), 1: (1, 0), 2: (0, 1), 3: (0, -1)}
    for i in range(n):
        x, y = (int(v) for v in torch.randint(2, 5, (2,), generator=g))
        cls = int(torch.randint(2, K, (1,), generator=g))
        dx, dy = step[int(command[i])]
        for t in range(T):
            xi, yi = x + dx * t, y + dy * t
            vox[i, t, xi:xi + 2, yi:yi + 2, 1:3] = cls
    return vox, command


def _cfg(kind='OccFeatureExtractor2D', dataset='toy'):
    return dict(type=kind, dataset_name=dataset, **TINY)


@pytest.mark.parametrize('cls', [OccFeatureExtractor2D, OccFeatureExtractor3D])
def test_extractor_shapes_and_training_decreases_loss(cls):
    model = cls(dataset_name='toy', **TINY)
    vox, cmd = toy_windows(8)
    out = model.extract(vox)
    # D = global part (feat_dim 16) + local part (class histogram + reconstruction NLL, K each)
    assert model.feat_dim == 16 + 2 * K
    assert out['frame_feats'].shape == (8, 3, 16 + 2 * K) and out['probs'].shape == (8, 4)
    torch.testing.assert_close(out['probs'].sum(-1), torch.ones(8))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model.loss(dict(voxels=vox, command=cmd))
        total = loss['loss_layout'] + loss['loss_command'] + loss['loss_recon']
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(total.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    # the layout target is the per-class column presence per cell, checked by hand
    tgt = model.layout_target(vox[:1])  # (1, T, K-1, 2, 2)
    assert tgt.shape == (1, 3, K - 1, 2, 2)
    torch.testing.assert_close(tgt[0, 0, 0], torch.ones(2, 2))  # road (class 1) everywhere


def test_version_depends_on_config_and_dataset():
    a = MODELS.build(_cfg())
    assert a.version == MODELS.build(_cfg()).version
    assert a.version != MODELS.build(_cfg(dataset='other')).version
    assert a.version != MODELS.build(dict(_cfg(), feat_dim=8)).version
    assert a.version != MODELS.build(dict(_cfg(), loss_weights=dict(command=0.5))).version
    assert a.version == MODELS.build(dict(_cfg(), frame_chunk=2)).version  # speed only
    assert a.version != MODELS.build(_cfg('OccFeatureExtractor3D')).version


def _save(model, path):
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


def test_checkpoint_version_enforced(tmp_path):
    model = MODELS.build(_cfg())
    ckpt = _save(model, tmp_path / 'fe.pth')
    metric = GenerationMetric(extractor=_cfg(), checkpoint=ckpt)
    assert metric.version == model.version and metric.prefix == f'gen2d@{model.version}'
    for p_a, p_b in zip(metric.extractor.parameters(), model.parameters()):
        assert torch.equal(p_a, p_b)
    with pytest.raises(VersionMismatchError, match='not comparable'):
        GenerationMetric(extractor=_cfg(dataset='other'), checkpoint=ckpt)
    with pytest.raises(VersionMismatchError):
        GenerationMetric(extractor=_cfg(), checkpoint=ckpt, expected_version='0' * 12)
    sd = {k: v for k, v in model.state_dict().items() if k != '_extra_state'}
    torch.save(dict(state_dict=sd), tmp_path / 'plain.pth')
    with pytest.raises(Exception, match='_extra_state|version'):
        GenerationMetric(extractor=_cfg(), checkpoint=str(tmp_path / 'plain.pth'))
    with pytest.raises(ValueError, match='checkpoint'):
        GenerationMetric(extractor=_cfg())


def _samples(pred, gt):
    return [dict(pred_semantics=p.to(torch.uint8), gt_semantics=g.to(torch.uint8))
            for p, g in zip(pred, gt)]


def test_generation_metric_identical_vs_shifted(tmp_path):
    torch.manual_seed(0)
    gt, _ = toy_windows(24, seed=1)
    # one (untrained) extractor instance shared by every metric below: same weights
    kw = dict(extractor=MODELS.build(_cfg()), allow_untrained=True, kid_subsets=10,
              kid_subset_size=30, is_splits=2)
    same = GenerationMetric(**kw, save_reference=str(tmp_path / 'ref.npz'))
    same.process(None, _samples(gt, gt))
    r_same = same.compute_metrics(same.results)
    assert r_same['FID'] == pytest.approx(0.0, abs=1e-6)
    assert r_same['precision'] == 1.0 and r_same['recall'] == 1.0
    assert r_same['TC'] == pytest.approx(r_same['TC_real'])
    assert set(r_same) == {'FID', 'KID', 'KID_std', 'precision', 'recall', 'IS', 'IS_std',
                           'TC', 'TC_real'}
    # a different distribution (blocks replaced by road, flat world) is far away
    flat = torch.zeros_like(gt)
    flat[..., 0] = 1
    diff = GenerationMetric(**kw)
    diff.process(None, _samples(flat, gt))
    r_diff = diff.compute_metrics(diff.results)
    assert r_diff['FID'] > 1e-3 and r_diff['KID'] > r_same['KID']
    assert r_diff['recall'] < 0.5
    assert r_diff['TC'] == pytest.approx(1.0, abs=1e-6)  # a static world is perfectly consistent
    # the saved reference gives the same numbers without gt in the samples
    ref = GenerationMetric(**kw, reference=str(tmp_path / 'ref.npz'))
    ref.process(None, [dict(pred_semantics=s['pred_semantics']) for s in _samples(flat, gt)])
    assert ref.compute_metrics(ref.results)['FID'] == pytest.approx(r_diff['FID'], rel=1e-5)
    # a reference written by another extractor version is refused
    save_reference_features(str(tmp_path / 'bad.npz'), np.zeros((2, 3, 16)), np.full((2, 4), .25),
                            'deadbeef0000')
    with pytest.raises(VersionMismatchError, match='not comparable'):
        GenerationMetric(**kw, reference=str(tmp_path / 'bad.npz'))


def test_generation_metric_rejects_mixed_window_lengths():
    gt3, _ = toy_windows(4, T=3, seed=1)
    gt2, _ = toy_windows(4, T=2, seed=2)
    metric = GenerationMetric(extractor=MODELS.build(_cfg()), allow_untrained=True,
                              statistics=('fid', 'tc'))
    metric.process(None, _samples(gt3, gt3) + _samples(gt2, gt2))
    with pytest.raises(ValueError, match=r'fake windows have different frame counts \[2, 3\]'):
        metric.compute_metrics(metric.results)


def test_generation_metric_through_evaluator():
    from mmengine.evaluator import Evaluator
    gt, _ = toy_windows(6, seed=2)
    ev = Evaluator(dict(type='GenerationMetric', _scope_='occworld4d', extractor=_cfg(),
                        allow_untrained=True, statistics=('fid', 'tc'), prefix='gen'))
    ev.process(_samples(gt, gt))
    res = ev.evaluate(6)
    assert res['gen/FID'] == pytest.approx(0.0, abs=1e-6)
    assert set(res) == {'gen/FID', 'gen/TC', 'gen/TC_real'}


def test_sanity_perturbations():
    from occworld4d.evaluation.sanity import perturbations
    vox, _ = toy_windows(4, T=3)
    p = perturbations(vox, K, FREE, drop_class=1)
    assert torch.equal(p['unchanged (other seed)'], vox)
    assert not (p['class 1 removed'] == 1).any()
    assert torch.equal(p['class 1 removed'][vox != 1], vox[vox != 1])
    assert (p['frame 0 repeated'] == vox[:, :1]).all()
    assert torch.equal(p['frames shuffled in time'].sort(1).values, vox.sort(1).values)
    changed = (p['5% voxel label noise'] != vox).float().mean().item()
    assert 0.02 < changed < 0.06  # 5 % redrawn, (K-1)/K of them change


def _meta_samples(pred, gt, scenes):
    out = _samples(pred, gt)
    for s, name in zip(out, scenes):
        s.update(scene=name, frame_ids=[f'{t:06d}' for t in range(pred.shape[1])])
    return out


def test_reference_cache_extracts_each_window_once(tmp_path, monkeypatch):
    from occworld4d.evaluation.metrics.generation_metric import window_id
    gt, _ = toy_windows(12, seed=4)
    fake = torch.flip(gt, dims=[2])
    model = MODELS.build(_cfg())
    path = str(tmp_path / 'ref_{version}.npz')
    kw = dict(extractor=model, allow_untrained=True, statistics=('fid', 'tc'),
              reference_cache=path)
    first = GenerationMetric(**kw)
    first.process(None, _meta_samples(fake[:8], gt[:8], [f's{i}' for i in range(8)]))
    r_first = first.compute_metrics(first.results)
    cached = tmp_path / f'ref_{model.version}.npz'
    with np.load(cached) as f:
        assert sorted(f['ids']) == sorted(f's{i}:000000-000002/3' for i in range(8))
    assert window_id(_meta_samples(fake[:1], gt[:1], ['a'])[0]) == 'a:000000-000002/3'
    # a second metric: cached windows are not extracted again (only 4 new ones are) ...
    calls = []
    orig = model.extract
    monkeypatch.setattr(model, 'extract', lambda v: calls.append(1) or orig(v))
    second = GenerationMetric(**kw)
    second.process(None, _meta_samples(fake, gt, [f's{i}' for i in range(12)]))
    assert len(calls) == 12 + 4  # 12 generated + the 4 windows missing from the cache
    second.compute_metrics(second.results)
    with np.load(cached) as f:
        assert len(f['ids']) == 12
    # ... and the numbers equal those of a run without any cache
    third = GenerationMetric(**dict(kw, reference_cache=None))
    third.process(None, _meta_samples(fake[:8], gt[:8], [f's{i}' for i in range(8)]))
    assert third.compute_metrics(third.results) == pytest.approx(r_first)
    # a cache written by another extractor version is refused
    (tmp_path / 'other.npz').write_bytes(cached.read_bytes())
    other = dict(kw, extractor=MODELS.build(_cfg(dataset='other')),
                 reference_cache=str(tmp_path / 'other.npz'))
    with pytest.raises(VersionMismatchError, match='reference cache'):
        GenerationMetric(**other)


def test_extractor_given_as_config_path_and_clear_errors(tmp_path):
    cfg = ('configs/evaluation/feature_extractor_2d_1xb2-10e_synthetic-city-tiny.py')
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    metric = GenerationMetric(extractor=osp.join(root, cfg), allow_untrained=True)
    assert type(metric.extractor).__name__ == 'OccFeatureExtractor2D'
    assert metric.extractor.dataset_name == 'synthetic_city_tiny'
    with pytest.raises(FileNotFoundError, match='missing.py'):
        GenerationMetric(extractor=str(tmp_path / 'missing.py'), allow_untrained=True)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        GenerationMetric(extractor=_cfg(), checkpoint=str(tmp_path / 'nope.pth'))
    with pytest.raises(ValueError, match='test_evaluator.checkpoint'):
        GenerationMetric(extractor=_cfg())
    with pytest.raises(ValueError, match='no samples were processed'):
        GenerationMetric(extractor=_cfg(), allow_untrained=True).compute_metrics([])
