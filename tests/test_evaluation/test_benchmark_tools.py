"""benchmark.py / count_params.py on a tiny config with a toy model defined here."""
import json
import os.path as osp
import statistics

import pytest
import torch
from mmengine.model import BaseModel

import occworld4d.models  # noqa: F401  (OccDataPreprocessor)
from helpers import ROOT, load_tool
from occworld4d.evaluation.benchmark import count_parameters
from occworld4d.registry import DATASETS, MODELS


@MODELS.register_module(name='H4ToyBenchModel', force=True)
class ToyModel(BaseModel):
    """Conv3d encoder (trainable) + linear head (frozen): known parameter counts."""

    def __init__(self, channels=4):
        super().__init__(data_preprocessor=MODELS.build(dict(type='OccDataPreprocessor')))
        self.encoder = torch.nn.Conv3d(1, channels, 3, padding=1)  # 27*C + C
        self.head = torch.nn.Linear(channels, 3)  # 3*C + 3
        self.head.requires_grad_(False)
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = inputs['voxels'].float().flatten(0, 1)[:, None]  # (B*T, 1, X, Y, Z)
        feat = self.encoder(x).mean((2, 3, 4))  # (B*T, C)
        if mode == 'loss':
            return dict(loss_toy=self.head(feat).pow(2).mean() + feat.pow(2).mean())
        self.calls += 1
        return [dict(pred=p) for p in self.head(feat)]


@DATASETS.register_module(name='H4ToyBenchDataset', force=True)
class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, n=4):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return dict(inputs=dict(voxels=torch.full((2, 4, 4, 2), i % 3, dtype=torch.uint8)),
                    data_samples=dict(index=i))


CONFIG = """
default_scope = 'occworld4d'
model = dict(type='H4ToyBenchModel', channels=4)
train_dataloader = dict(batch_size=2, dataset=dict(type='H4ToyBenchDataset', n=4),
                        collate_fn=dict(type='default_collate'))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'toy_bench.py'
    path.write_text(CONFIG)
    return str(path)


def test_count_parameters_exact():
    rows = count_parameters(ToyModel(channels=4))
    assert rows['encoder'] == dict(total=27 * 4 + 4, trainable=112, frozen=0)
    assert rows['head'] == dict(total=3 * 4 + 3, trainable=0, frozen=15)
    assert rows['total'] == dict(total=127, trainable=112, frozen=15)


@pytest.mark.parametrize('task', ['train', 'infer', 'sample', 'data'])
def test_benchmark_emits_valid_json(config, tmp_path, task):
    bench = load_tool('tools/analysis_tools/benchmark.py')
    out = tmp_path / f'{task}.json'
    bench.main([config, '--task', task, '--iters', '3', '--warmup', '1', '--json', str(out),
                '--device', 'cpu'])
    res = json.loads(out.read_text())
    assert res['task'] == task and res['iters'] == 3 and len(res['sec_per_iter_all']) == 3
    assert res['sec_per_iter'] == pytest.approx(statistics.median(res['sec_per_iter_all']))
    per_iter = 1 if task == 'data' else 2
    assert res['samples_per_sec'] == pytest.approx(per_iter / res['sec_per_iter'])
    assert res['memory']['kind'] == 'cpu_peak_rss' and res['memory']['peak_mb'] > 10
    if task != 'data':
        assert res['params']['total'] == dict(total=127, trainable=112, frozen=15)
        assert res['batch_size'] == 2


def test_benchmark_cfg_options_and_errors(config, tmp_path, capsys):
    bench = load_tool('tools/analysis_tools/benchmark.py')
    res = bench.main([config, '--task', 'infer', '--iters', '1', '--warmup', '0',
                      '--cfg-options', 'model.channels=2', '--batch-size', '3'])
    assert res['params']['encoder']['total'] == 27 * 2 + 2 and res['batch_size'] == 3
    with pytest.raises(SystemExit):
        bench.main([str(tmp_path / 'missing.py'), '--task', 'train'])
    assert 'does not exist' in capsys.readouterr().err


def test_count_params_tool(config, tmp_path, capsys):
    tool = load_tool('tools/analysis_tools/count_params.py')
    rows = tool.main([config, '--json', str(tmp_path / 'p.json')])
    text = capsys.readouterr().out
    assert 'encoder' in text and '127' in text and 'frozen' in text
    assert json.loads((tmp_path / 'p.json').read_text()) == rows


@MODELS.register_module(name='H4ToySamplerModel', force=True)
class ToySampler(ToyModel):
    """A generator with a ``sample(batch_size)`` method: the 'sample' task must call it."""
    sample_calls = []

    def sample(self, batch_size, guidance=2.0):
        ToySampler.sample_calls.append(batch_size)
        return torch.zeros(batch_size, 2, 4, 4, 2)


def test_benchmark_sample_task_uses_sample_method(config, tmp_path):
    from mmengine.config import Config
    from occworld4d.evaluation.benchmark import run_benchmark
    cfg = Config.fromfile(config)
    cfg.model.type = 'H4ToySamplerModel'
    ToySampler.sample_calls.clear()
    res = run_benchmark(cfg, 'sample', iters=2, warmup=1)
    assert res['sample_fn'] == 'sample'
    assert ToySampler.sample_calls == [2, 2, 2]  # warm-up + 2 timed, batch size 2


@MODELS.register_module(name='H4ToyLatentGenerator', force=True)
class ToyLatentGenerator(ToyModel):
    """``sample(batch_size, cond)`` + ``decode_latent``: the sample task must decode too."""
    calls = []

    def conditions_from_inputs(self, inputs):
        return dict(level=inputs['voxels'].float().mean((1, 2, 3, 4)))  # (B,)

    def sample(self, batch_size, cond=None):
        ToyLatentGenerator.calls.append(('sample', batch_size, tuple(cond['level'].tolist())))
        return torch.zeros(batch_size, 3)

    def decode_latent(self, x0):
        ToyLatentGenerator.calls.append(('decode', tuple(x0.shape)))
        return torch.zeros(x0.shape[0], 2, 4, 4, 2)


def test_benchmark_sample_task_decodes_with_the_batch_conditions(config):
    from mmengine.config import Config
    from occworld4d.evaluation.benchmark import run_benchmark
    cfg = Config.fromfile(config)
    cfg.model.type = 'H4ToyLatentGenerator'
    ToyLatentGenerator.calls.clear()
    res = run_benchmark(cfg, 'sample', iters=2, warmup=1)
    assert res['sample_fn'] == 'sample+decode_latent'
    # the toy dataset's items 0 and 1 are filled with 0 and 1: those are the conditions
    timed = [('sample', 2, (0.0, 1.0)), ('decode', (2, 3))] * 3  # warm-up + 2 timed
    assert ToyLatentGenerator.calls[:6] == timed
    # then the decoder alone: one latent drawn, decoded warm-up + 2 times
    assert ToyLatentGenerator.calls[6:] == [('sample', 2, (0.0, 1.0))] + [('decode', (2, 3))] * 3
    assert len(res['decode_sec_per_iter_all']) == 2
    ToyLatentGenerator.calls.clear()
    res = run_benchmark(cfg, 'sample', iters=2, warmup=0, decode=False)
    assert res['sample_fn'] == 'sample' and 'decode_sec_per_iter' not in res
    assert [c[0] for c in ToyLatentGenerator.calls] == ['sample', 'sample']


def test_benchmark_sample_task_on_the_tiny_dit_config(tmp_path):
    """LatentDiffusion: sampled latents are decoded into scenes (the tool's real use)."""
    bench = load_tool('tools/analysis_tools/benchmark.py')
    res = bench.main([osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'),
                      '--task', 'sample', '--iters', '1', '--warmup', '0', '--device', 'cpu',
                      '--batch-size', '1', '--cfg-options', 'model.sample_cfg.num_steps=2',
                      'train_dataloader.dataset.num_scenes=1'])
    assert res['sample_fn'] == 'sample+decode_latent' and res['model'] == 'LatentDiffusion'
    # timings of separate runs are not compared (noisy on a shared CPU): both are measured
    assert res['decode_sec_per_iter'] > 0 and res['sec_per_iter'] > 0
