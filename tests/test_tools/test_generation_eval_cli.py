"""Generation scoring through tools/test.py on the tiny DynamicCity DiT config:
train a tiny extractor -> train the tiny DiT -> tools/test.py samples every test window,
writes the samples as npz and the FID / KID / P-R / IS / TC metrics as JSON, and caches the
reference features of the split (their reuse is tested in test_generation_metric.py)."""
import json
import math

import numpy as np
import pytest

from helpers import ROOT, tool_main

FE_CFG = 'configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py'
DIT_CFG = 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'


@pytest.mark.slow
def test_dit_config_scores_generation_through_test_py(tmp_path, capfd):
    """The tools' ``main(argv)`` in this process (what ``python tools/X.py ARGS`` runs; a
    traceback would be an exception other than SystemExit escaping it): 4 subprocesses each
    paid ~8 s CPU of interpreter + mmengine start-up."""
    fe_dir, dit_dir, work = tmp_path / 'fe', tmp_path / 'dit', tmp_path / 'test'
    tool_main('tools/train.py', FE_CFG, '--work-dir', str(fe_dir), '--cfg-options',
              'train_cfg.max_epochs=1', 'train_dataloader.dataset.num_scenes=4',
              'train_dataloader.dataset.num_frames=2', 'default_hooks.checkpoint.interval=1')
    tool_main('tools/train.py', DIT_CFG, '--work-dir', str(dit_dir), '--cfg-options',
              'train_cfg.max_epochs=1', 'train_dataloader.dataset.num_scenes=2',
              'default_hooks.checkpoint.interval=1', 'model.allow_random_tokenizer=True')
    ckpt, fe_ckpt = str(dit_dir / 'epoch_1.pth'), str(fe_dir / 'epoch_1.pth')

    # without the extractor checkpoint: one clear message naming the key to set
    capfd.readouterr()
    with pytest.raises(SystemExit) as exc:
        tool_main('tools/test.py', DIT_CFG, ckpt, '--work-dir', str(work))
    err = capfd.readouterr().err
    assert exc.value.code == 2 and 'test_evaluator.checkpoint' in err
    assert 'Traceback' not in err

    cache = tmp_path / 'cache' / 'ref_{version}.npz'
    opts = ['--cfg-options', f'test_evaluator.checkpoint={fe_ckpt}',
            f'test_evaluator.reference_cache={cache}', 'model.sample_cfg.num_steps=2']
    out1 = tmp_path / 'gen1.json'
    tool_main('tools/test.py', DIT_CFG, ckpt, '--work-dir', str(work), '--out', str(out1),
              '--sample-dir', 'generated', *opts)
    res = json.loads(out1.read_text())
    names = ('FID', 'KID', 'KID_std', 'precision', 'recall', 'IS', 'IS_std', 'TC', 'TC_real')
    gen = {k.split('/', 1)[1]: v for k, v in res.items() if k.startswith('gen3d@')}
    assert set(gen) == set(names), res
    assert all(isinstance(v, float) and math.isfinite(v) for v in gen.values()), gen
    # seed 0, 2 iterations each: bit-identical run to run; 2 threads move FID by 3e-8 (rel).
    # The 1-epoch extractor gives every sample the same command probabilities (IS 1); no
    # sample lies in the 3-NN ball of a reference and vice versa (precision / recall 0)
    assert gen['FID'] == pytest.approx(0.66297, rel=2e-3), gen
    assert gen['KID'] == pytest.approx(0.058956, rel=2e-3), gen
    assert gen['IS'] == pytest.approx(1.0, abs=1e-5) and gen['precision'] == gen['recall'] == 0
    assert gen['TC'] == pytest.approx(0.99984, abs=1e-4), gen
    assert gen['TC_real'] == pytest.approx(0.999869, abs=1e-5), gen
    assert res['_command'].startswith('python tools/test.py ' + DIT_CFG)
    assert res['_checkpoint'] == ckpt

    # one npz per test window (4 val scenes of the tiny city), named after the window, in
    # --sample-dir under the work dir (default: the config's save_samples.out_dir 'samples')
    files = sorted((work / 'generated').glob('*.npz'))
    assert [f.name for f in files] == [f'synthetic-1-{i:05d}_000000.npz' for i in range(4)]
    with np.load(files[0]) as f:
        assert f['semantics'].shape == (8, 32, 32, 8) and f['semantics'].dtype == np.uint8
        assert f['semantics'].max() < 12 and f['trajectory'].shape == (8, 3)
        assert int(f['command']) in range(4)
    assert not list((work / 'generated').glob('*.tmp*'))

    # the reference features of the split were cached under the extractor version
    version = next(k for k in res if k.startswith('gen3d@')).split('/')[0][len('gen3d@'):]
    cached = tmp_path / 'cache' / f'ref_{version}.npz'
    with np.load(cached) as f:
        assert len(f['ids']) == 4 and str(f['version']) == version
