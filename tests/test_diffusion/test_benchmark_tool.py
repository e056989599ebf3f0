"""tools/analysis_tools/benchmark_diffusion.py and the exact sampler laws it reports."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from occworld4d.diffusion import GaussianDiffusion
from occworld4d.diffusion.analytic import GaussianDataDenoiser, sampler_law

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'analysis_tools',
                'benchmark_diffusion.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_diffusion', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('sampler,steps,eta', [('ddpm', 5, 0.0), ('ddim', 6, 0.5),
                                               ('dpmpp_3m', 5, 0.0), ('unipc', 4, 0.0)])
def test_exact_sampler_law_matches_monte_carlo_moments(sampler, steps, eta):
    """The exact output law (propagated or probed) equals the moments of many samples, on
    deliberately coarse chains whose law is visibly off N(mean, cov)."""
    tool = _load_tool()
    mean, cov = tool.gaussian_problem(4)
    engine = GaussianDiffusion()
    model = GaussianDataDenoiser(engine.schedule, mean, cov)
    law_mean, law_cov = sampler_law(engine, model, sampler, steps, eta)
    off = (law_mean - mean).norm() + (law_cov - cov).norm()
    x = engine.sample(model, (100000, 4), sampler=sampler, num_steps=steps, eta=eta,
                      dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # Monte-Carlo error of 1e5 samples: ~0.005 on the mean, ~0.01 on the covariance
    mc = (x.mean(0) - law_mean).norm() + (torch.cov(x.T) - law_cov).norm()
    assert off > 0.1 and mc < 0.05, (off, mc)


def test_benchmark_rows_and_json(tmp_path, capsys):
    tool = _load_tool()
    out = tmp_path / 'bench.json'
    tool.main(['--num-samples', '300', '--seeds', '2', '--runs', 'ddpm-1000', 'ddpm-250',
               'ddim-50', 'dpmpp_2m-20', 'dpmpp_2m-20-no-zero-snr', 'dpmpp_3m-20', 'dpmpp_3m-30',
               'unipc-20', '--json', str(out)])
    printed = capsys.readouterr().out
    assert 'unipc-20' in printed and 'law_w2' in printed and '+-' in printed
    assert 'law/ddpm' in printed and 'note' in printed
    result = json.loads(out.read_text())
    assert result['problem']['seeds'] == [0, 1]
    rows = {r['name']: r for r in result['rows']}
    assert set(rows) == {'exact', 'ddpm-1000', 'ddpm-250', 'ddim-50', 'dpmpp_2m-20',
                         'dpmpp_2m-20-no-zero-snr', 'dpmpp_3m-20', 'dpmpp_3m-30', 'unipc-20'}
    assert [rows[k]['calls'] for k in ('ddpm-250', 'ddim-50', 'dpmpp_2m-20', 'dpmpp_3m-20',
                                       'unipc-20')] == [250, 50, 20, 20, 20]
    assert rows['unipc-20']['speedup'] == 50.0
    assert [rows[k]['note'] for k in ('ddpm-1000', 'ddim-50', 'dpmpp_2m-20', 'dpmpp_3m-20',
                                      'unipc-20')] == ['ancestral', '1st order', '2nd order',
                                                       '3rd order', 'UniP-3 + UniC']
    # law/ddpm: <= 1 matches DDPM-1000 (UniPC-20, 3M-30); DDIM-50 is ~50x off (1st order)
    ratio = {k: r['law_vs_ddpm'] for k, r in rows.items()}
    assert ratio['ddpm-1000'] == 1.0
    assert ratio['unipc-20'] < 1 and ratio['dpmpp_3m-30'] < 1 < ratio['dpmpp_3m-20']
    assert ratio['dpmpp_3m-20'] < ratio['dpmpp_2m-20'] < ratio['ddim-50']
    assert ratio['ddim-50'] > 20
    assert rows['exact']['w2'] > 0 and rows['exact']['w2_std'] > 0  # the noise floor
    # exact-law errors (no sampling noise): UniPC-20 < DDPM-250 < DPM-Solver++-20 < DDIM-50,
    # and the zero-SNR start is what brings DPM-Solver++-20 below 0.01
    law = {k: r['law_w2'] for k, r in rows.items()}
    assert law['unipc-20'] < law['ddpm-250'] < 0.01
    assert law['ddpm-250'] < law['dpmpp_2m-20'] < 0.01 < law['dpmpp_2m-20-no-zero-snr']
    assert 0.03 < law['ddim-50'] < 0.1
