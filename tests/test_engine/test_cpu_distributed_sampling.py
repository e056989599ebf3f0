"""Issue 15: tools/sample.py under torchrun (``--launcher pytorch``) on a CPU, 2 processes of
1 thread each: every rank draws its share of the batches, every sample file is written once
(none missing, none extra, no temporaries), and the files equal a one-process run with the
same ``--seed`` / ``--batch-size`` bit for bit. The model is the tiny latent-diffusion
generator of tests/test_apis/tiny_models.py (imported by the workers through PYTHONPATH).
"""
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, tool_main
from occworld4d.apis.launcher import sample_batches, setup_sampling

APIS = osp.join(ROOT, 'tests', 'test_apis')
TIMEOUT = 300


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1',
                PYTHONPATH=os.pathsep.join([APIS] + [p for p in [os.environ.get('PYTHONPATH')]
                                                     if p]))


@pytest.fixture(scope='module')
def generator(tmp_path_factory):
    sys.path.insert(0, APIS)
    from tiny_models import tiny_model_cfg

    import occworld4d.diffusion  # noqa: F401
    from occworld4d.registry import MODELS
    tmp = tmp_path_factory.mktemp('dist_sample')
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    for p in model.denoiser.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    ckpt = tmp / 'tiny.pth'
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), ckpt)
    cfg = tmp / 'tiny_dit.py'
    cfg.write_text("default_scope = 'occworld4d'\n"
                   "custom_imports = dict(imports=['tiny_models'], allow_failed_imports=False)\n"
                   f'model = {tiny_model_cfg()!r}\nfree_label = 0\n')
    return tmp, str(cfg), str(ckpt)


def _sample_args(cfg, ckpt, out, *extra):
    return [osp.join(ROOT, 'tools', 'sample.py'), cfg, ckpt, '--task', 'uncond', '--steps', '2',
            '--seed', '3', '--num-samples', '5', '--out', str(out), '--no-render',
            '--no-progress', *extra]


def _run(cmd, log):
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT,
                              timeout=TIMEOUT)
    out = open(log).read()
    assert proc.returncode == 0, out[-4000:]
    return out


def _arrays(folder):
    names = sorted(os.listdir(folder))
    assert names == [f'sample_{i}.npz' for i in range(5)], names  # no missing / extra / .tmp
    out = []
    for name in names:
        with np.load(osp.join(folder, name)) as data:
            out.append({k: data[k] for k in data.files})
    return out


def test_sample_batches_split_the_samples_once_and_ignore_the_process_count():
    for n in range(1, 10):
        for b in range(1, 5):
            single = sample_batches(n, b, 7)
            for world in range(1, 4):
                shares = [sample_batches(n, b, 7, r, world) for r in range(world)]
                merged = sorted(x for share in shares for x in share)
                assert merged == single  # the same batches, seeds and sizes on any world
                indices = [first + k for first, count, _ in merged for k in range(count)]
                assert indices == list(range(n))  # every sample exactly once
                assert all(s == 7 + first // b for first, _, s in merged)
    assert sample_batches(3, 3, 5) == [(0, 3, 5)]  # one batch: the seed itself (as before)
    with pytest.raises(ValueError, match='batch_size'):
        sample_batches(3, 0, 0)


def test_launcher_pytorch_outside_torchrun_is_one_error(monkeypatch, capsys):
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit) as info:
        setup_sampling('pytorch')
    assert info.value.code == 2
    assert 'torchrun' in capsys.readouterr().err
    assert setup_sampling('none') == (0, 1)


def test_default_batch_is_the_single_call_of_before(generator):
    """One process without --batch-size: one batch of --num-samples with --seed, exactly the
    inferencer call that sample.py made before it had batches."""
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import sample
    from mmengine.config import Config

    from occworld4d.apis.inferencer import OccGenerationInferencer
    tmp, cfg, ckpt = generator
    out = tmp / 'default'
    sample.main(_sample_args(cfg, ckpt, out)[1:])
    inf = OccGenerationInferencer(Config.fromfile(cfg), ckpt, device='cpu')
    ref = inf('uncond', num_samples=5, seed=3, num_steps=2)['semantics']
    got = np.stack([a['semantics'] for a in _arrays(out)])
    assert np.array_equal(got, ref)


def test_two_processes_write_each_sample_once_equal_to_one_process(generator, tmp_path):
    tmp, cfg, ckpt = generator
    one, two = tmp_path / 'one', tmp_path / 'two'
    # 2 ranks, no --batch-size: batches of ceil(5 / 2) = 3 (seed 3: samples 0-2 on rank 0,
    # seed 4: samples 3-4 on rank 1); the one-process reference asks for the same batches
    _run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
          '--master_port', str(_free_port()), *_sample_args(cfg, ckpt, two, '--launcher',
                                                            'pytorch')], tmp_path / 'two.log')
    log = open(tmp_path / 'two.log').read()
    drawn = {int(r): int(n) for r, n in re.findall(
        r'rank (\d)/2: uncond: (\d) sample\(s\)', log)}
    assert drawn == {0: 3, 1: 2}, log[-4000:]  # each rank drew its share, once
    assert '5 sample(s) in batches of 3' in log
    # the one-process reference: tools/sample.py's main(argv) in this process (a subprocess
    # paid ~8 s CPU of start-up)
    tool_main(*_sample_args(cfg, ckpt, one, '--batch-size', '3'))
    a, b = _arrays(one), _arrays(two)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(x[k], y[k]), f'sample_{i}.npz: {k}'
    sem = [x['semantics'] for x in a]
    assert not any(np.array_equal(sem[i], sem[j]) for i in range(5) for j in range(i))
