"""Generation scoring of the OccSora and UniScene DiT configs through tools/test.py.

Slow test: one tiny 3D extractor and the tiny OccSora / UniScene DiTs are trained for a couple
of iterations (in this process, through the Runner as tools/train.py builds it), then
``tools/test.py`` (a subprocess, what a user runs) samples every test window with its
trajectory / layout, writes the npz samples and the metrics JSON. Fast test: every stage-2
config that scores generation pairs its generator with an extractor of the same vocabulary
and a reference cache that only windows of one split, length and extractor share.
"""
import glob
import json
import math
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import ROOT, run_cli, tool_main

FE_CFG = 'configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py'
OCCSORA_CFG = 'configs/occsora/occsora_dit_tiny_synthetic-city.py'
UNISCENE_CFG = 'configs/uniscene/uniscene_dit_tiny_synthetic-city.py'
GEN_KEYS = ('FID', 'KID', 'KID_std', 'precision', 'recall', 'IS', 'IS_std', 'TC', 'TC_real')
# the demo variants score their samples with score_samples.py (no extractor to train in the
# demo's 10 minutes), so their test metric is the OccupancyMetric alone
STAGE2 = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', 'occsora', 'occsora_dit_*.py'))
                + glob.glob(osp.join(ROOT, 'configs', 'uniscene', 'uniscene_dit_*.py'))
                if '_demo_' not in osp.basename(p))


def train(config, work_dir, **overrides):
    """A few iterations of ``config`` through mmengine's Runner; the last checkpoint's path."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.merge_from_dict(overrides)
    cfg.work_dir = str(work_dir)
    # one logger / message hub / visualizer per run (mmengine names them per second)
    cfg.experiment_name = cfg.visualizer.name = osp.basename(str(work_dir))
    cfg.log_level = 'WARNING'
    Runner.from_cfg(cfg).train()
    return sorted(glob.glob(osp.join(str(work_dir), 'epoch_*.pth')))[-1]


def run_test_py(config, ckpt, work_dir, out, *options):
    proc = run_cli('tools/test.py', config, ckpt, '--work-dir', work_dir, '--out', out,
                   '--cfg-options', 'model.sample_cfg.num_steps=2', *options)
    return json.loads(out.read_text()), proc.stdout + proc.stderr


def generation_metrics(res, fid, kid, tc):
    """The gen3d@ metrics of ``res``, checked against the seeded run's FID / KID / TC: seed 0,
    2 iterations each, bit-identical run to run on 1 thread; training on 2 threads moves
    OccSora's FID / KID / TC by 2e-4 / 5e-4 (rel) / 1.3e-5. The 1-epoch extractor gives every
    sample the same command probabilities (IS 1); precision / recall are 0."""
    gen = {k.split('/', 1)[1]: v for k, v in res.items() if k.startswith('gen3d@')}
    assert set(gen) == set(GEN_KEYS), res
    assert all(isinstance(v, float) and math.isfinite(v) for v in gen.values()), gen
    assert gen['FID'] == pytest.approx(fid, rel=2e-3), gen
    assert gen['KID'] == pytest.approx(kid, rel=2e-3), gen
    assert gen['TC'] == pytest.approx(tc, abs=1e-4), gen
    assert gen['TC_real'] == pytest.approx(0.999869, abs=1e-5), gen  # the 4 val windows
    assert gen['IS'] == pytest.approx(1.0, abs=1e-5) and gen['precision'] == gen['recall'] == 0
    return gen


def samples(folder):
    files = sorted(folder.glob('*.npz'))
    # one npz per test window (the 4 val scenes of the tiny city), named after the window
    assert [f.name for f in files] == [f'synthetic-1-{i:05d}_000000.npz' for i in range(4)]
    assert not list(folder.glob('*.tmp*'))
    return files


@pytest.mark.slow
def test_occsora_and_uniscene_dit_configs_score_generation(tmp_path):
    fe_ckpt = train(FE_CFG, tmp_path / 'fe', train_cfg=dict(max_epochs=1),
                    train_dataloader=dict(dataset=dict(num_scenes=4, num_frames=2)),
                    default_hooks=dict(checkpoint=dict(interval=1)))
    small = dict(train_cfg=dict(max_epochs=1),  # 2 iterations of batch 2
                 train_dataloader=dict(dataset=dict(num_scenes=4)),
                 default_hooks=dict(checkpoint=dict(interval=1)),
                 model=dict(allow_random_tokenizer=True))  # no stage-1 run here
    occsora_ckpt = train(OCCSORA_CFG, tmp_path / 'occsora', **small)
    uniscene_ckpt = train(UNISCENE_CFG, tmp_path / 'uniscene', **small)
    cache = tmp_path / 'cache' / 'ref_{version}.npz'

    # OccSora: one GenerationMetric (test_evaluator.checkpoint), trajectory-conditioned samples
    res, log = run_test_py(OCCSORA_CFG, occsora_ckpt, tmp_path / 'test_occsora',
                           tmp_path / 'occsora.json', f'test_evaluator.checkpoint={fe_ckpt}',
                           f'test_evaluator.reference_cache={cache}')
    occsora = generation_metrics(res, fid=1.8809, kid=0.18298, tc=0.99960)
    assert '4 reference windows added' in log
    for path in samples(tmp_path / 'test_occsora' / 'samples'):
        with np.load(path) as f:
            assert f['semantics'].shape == (8, 32, 32, 8) and f['semantics'].dtype == np.uint8
            assert f['semantics'].max() < 12 and f['trajectory'].shape == (8, 3)
    version = next(k for k in res if k.startswith('gen3d@')).split('/')[0][len('gen3d@'):]
    with np.load(str(cache).replace('{version}', version)) as f:
        assert len(f['ids']) == 4 and str(f['version']) == version

    # UniScene: [GenerationMetric, OccupancyMetric] (test_evaluator.0.checkpoint), layout-
    # conditioned samples; the same windows and extractor reuse the cached reference features
    res, log = run_test_py(UNISCENE_CFG, uniscene_ckpt, tmp_path / 'test_uniscene',
                           tmp_path / 'uniscene.json', f'test_evaluator.0.checkpoint={fe_ckpt}',
                           f'test_evaluator.0.reference_cache={cache}')
    uniscene = generation_metrics(res, fid=1.8583, kid=0.18110, tc=0.99965)
    assert 'reference windows added' not in log
    assert uniscene['TC_real'] == occsora['TC_real']  # the same reference, from the cache
    assert res['dynamiccity/mIoU'] == pytest.approx(0.01357, abs=1e-4), res
    assert res['dynamiccity/IoU'] == pytest.approx(0.31445, abs=1e-4), res
    for path in samples(tmp_path / 'test_uniscene' / 'samples'):
        with np.load(path) as f:
            assert f['semantics'].shape == (8, 32, 32, 8) and f['semantics'].max() < 12
            assert f['layout'].shape == (8, 16, 16)  # the condition it was sampled from
    assert res['_command'].startswith('python tools/test.py ' + UNISCENE_CFG)


def _generation_metric(cfg):
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    found = [i for i, ev in enumerate(evaluators) if ev['type'] == 'GenerationMetric']
    assert len(found) == 1, evaluators
    # the checkpoint key the configs' comments name: test_evaluator(.0).checkpoint
    assert found[0] == 0
    return evaluators[0]


@pytest.mark.parametrize('path', STAGE2, ids=osp.basename)
def test_stage2_config_pairs_generator_and_extractor(path):
    cfg = Config.fromfile(path)
    gm = _generation_metric(cfg)
    assert cfg.test_cfg == dict(type='TestLoop')
    assert cfg.default_hooks.save_samples.type == 'SaveOccSamplesHook'
    assert gm.get('checkpoint') is None  # the user's extractor checkpoint, set at test time
    ext = Config.fromfile(osp.join(ROOT, gm.extractor))
    assert ext.model.type == 'OccFeatureExtractor3D'
    # the extractor reads the generator's classes: same vocabulary, K and free label
    K = cfg.model.tokenizer.num_classes
    assert (ext.vocabulary, ext.model.num_classes) == (cfg.vocabulary, K)
    assert ext.model.free_label == cfg.free_label and cfg.model.data_preprocessor.num_classes == K
    ds = cfg.test_dataloader.dataset
    assert ds.get('test_mode') is True and ds.get('class_merge') == \
        ext.train_dataloader.dataset.get('class_merge')
    # one cache per split, window length and extractor version
    T = ds.num_frames
    assert '{version}' in gm.reference_cache and f'-{T}f_' in gm.reference_cache
    stride = ds.get('window_stride', T)
    assert stride == T or ds.type == 'SyntheticCityDataset'  # non-overlapping test windows
    # the model is conditioned on what the test pipeline builds
    cond = cfg.model.denoiser.get('condition') or cfg.model.denoiser.get('conditions')
    transforms = [t['type'] for t in ds.pipeline]
    if 'layout' in (cond if isinstance(cond, (list, tuple)) else [cond]):
        assert 'UniSceneLayout' in transforms
    assert transforms[-1] == 'PackOccInputs'


def test_configs_sharing_a_reference_cache_share_windows_and_extractor():
    """Cached reference features are keyed by window id: configs that write one cache file
    must evaluate the same split with the same extractor (else a cache hit is wrong)."""
    paths = STAGE2 + sorted(glob.glob(osp.join(ROOT, 'configs', 'dynamiccity', '*_dit_*.py')))
    by_cache = {}
    for path in paths:
        cfg = Config.fromfile(path)
        if not cfg.get('test_evaluator'):
            continue
        gm = _generation_metric(cfg)
        ds = cfg.test_dataloader.dataset.to_dict()
        key = {k: ds.get(k) for k in ('type', 'data_root', 'ann_file', 'split', 'num_frames',
                                      'window_stride', 'class_merge', 'num_scenes', 'seed',
                                      'grid_size', 'preset', 'vocabulary')}
        by_cache.setdefault(gm.reference_cache, []).append((gm.extractor, key, path))
    shared = {c: v for c, v in by_cache.items() if len(v) > 1}
    assert shared, 'the tiny synthetic-city configs share one cache'
    for cache, users in shared.items():
        assert len({(e, json.dumps(k, sort_keys=True, default=str)) for e, k, _ in users}) == 1, \
            (cache, users)


def _exit(capfd, *args):
    """tools/test.py's ``main(argv)`` in this process, expected to stop with SystemExit (a
    traceback would be another exception escaping it): its code and stderr. Two subprocesses
    here each paid ~8 s CPU of interpreter + mmengine start-up for a one-line error."""
    capfd.readouterr()
    with pytest.raises(SystemExit) as info:
        tool_main('tools/test.py', *args)
    return info.value.code, capfd.readouterr().err


def test_missing_extractor_checkpoint_names_the_list_index(tmp_path, capfd):
    """UniScene's test_evaluator is a list: the message names ``test_evaluator.0.checkpoint``
    and the wrong key (``test_evaluator.checkpoint`` on a list) is one clear error too."""
    ckpt = tmp_path / 'dummy.pth'
    ckpt.write_bytes(b'')
    code, err = _exit(capfd, UNISCENE_CFG, ckpt)
    assert code == 2 and 'test_evaluator.0.checkpoint=PATH' in err
    code, err = _exit(capfd, UNISCENE_CFG, ckpt, '--cfg-options',
                      'test_evaluator.checkpoint=x.pth')
    assert code == 2 and 'Traceback' not in err
    assert 'addressed by its index' in err
