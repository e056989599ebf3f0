"""tools/analysis_tools/benchmark_diffusion.py: exact-law accuracy per network call."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from occworld4d.diffusion import GaussianDiffusion
from occworld4d.diffusion.analytic import GaussianDataDenoiser, gaussian_w2

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'analysis_tools',
                'benchmark_diffusion.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_diffusion', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exact_law_of_ddpm_matches_monte_carlo_moments():
    """The propagated DDPM law (mean, covariance) equals the moments of many DDPM samples."""
    tool = _load_tool()
    mean, cov = tool.gaussian_problem(4)
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, mean, cov)
    # a deliberately coarse chain so that its law is visibly off N(mean, cov)
    w2_law = tool.ddpm_law_w2(engine, model, 5, mean, cov, 'cpu')
    x = engine.sample(model, (100000, 4), num_steps=5, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(0))
    w2_mc = gaussian_w2(x.mean(0), torch.cov(x.T), mean, cov)
    assert w2_law > 0.1
    assert w2_mc == pytest.approx(w2_law, abs=0.02)


def test_benchmark_rows_and_json(tmp_path, capsys):
    tool = _load_tool()
    out = tmp_path / 'bench.json'
    tool.main(['--num-samples', '300', '--runs', 'ddpm-250', 'ddim-50', 'dpmpp_2m-20',
               '--json', str(out)])
    printed = capsys.readouterr().out
    assert 'dpmpp_2m-20' in printed and 'law_w2' in printed
    rows = {r['name']: r for r in json.loads(out.read_text())['rows']}
    assert set(rows) == {'exact', 'ddpm-250', 'ddim-50', 'dpmpp_2m-20'}
    assert [rows[k]['calls'] for k in ('ddpm-250', 'ddim-50', 'dpmpp_2m-20')] == [250, 50, 20]
    assert rows['dpmpp_2m-20']['speedup'] == 50.0
    # exact-law errors (no sampling noise): DDPM-250 < DPM-Solver++-20 < DDIM-50
    assert rows['ddpm-250']['law_w2'] < 0.01
    assert rows['dpmpp_2m-20']['law_w2'] < 0.02
    assert 0.03 < rows['ddim-50']['law_w2'] < 0.1
