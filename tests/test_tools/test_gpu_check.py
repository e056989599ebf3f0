import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, load_tool

TOOL = 'tools/analysis_tools/gpu_check.py'


def test_dry_run_writes_every_section_with_numbers(tmp_path):
    out = tmp_path / 'gpu_check.json'
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    res = subprocess.run([sys.executable, osp.join(ROOT, TOOL), '--dry-run', '--out', str(out),
                          '--peak-tflops', '1'], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r['dry_run'] is True and r['env']['device'] == 'cpu'
    assert r['env']['peak_bf16_flops'] == 1e12
    names = {'dynamiccity_vae', 'dynamiccity_dit', 'occsora_vq', 'occsora_dit',
             'occworld_vqvae', 'occworld_wm', 'uniscene_vae', 'uniscene_dit'}
    dits = {'dynamiccity_dit', 'occsora_dit', 'uniscene_dit'}
    assert set(r['train']) == names
    for name, row in r['train'].items():
        assert 'error' not in row, (name, row)
        assert row['sec_per_iter'] > 0 and row['peak_mem_mib'] > 0 and row['params'] > 0
        assert row['batch_size'] == 1
    assert set(r['mfu']) == dits
    for name, row in r['mfu'].items():
        assert 'error' not in row, (name, row)
        assert row['flops_per_step'] > 0
        assert row['sec_per_iter'] == r['train'][name]['sec_per_iter']
        assert row['mfu'] == pytest.approx(row['flops_per_step'] / row['sec_per_iter'] / 1e12)
    assert set(r['forecast']) == {'kv_cached_fp32', 'kv_cached_bf16'}
    for row in r['forecast'].values():
        assert 'error' not in row, row
        assert row['mode'] == 'cached' and row['history'] == 2 and row['future'] == 2
        assert row['fps'] == pytest.approx(row['future'] / row['total_s'])
    assert set(r['sampling']) == dits
    for name, row in r['sampling'].items():
        assert 'error' not in row, (name, row)
        assert row['steps'] == 4 and row['guidance_scale'] == 4.0 and row['conditions']
        assert row['sec_per_scene'] == pytest.approx(row['sample_s'] + row['decode_s'])
    assert r['sampling']['uniscene_dit']['conditions'] == ['layout']
    assert set(r['flash_attn']) == dits
    for name, row in r['flash_attn'].items():
        assert 'error' not in row, (name, row)
        assert row['attention_layers'] > 0 and row['sdpa']['train_sec_per_iter'] > 0
        if not row['flash_attn_installed']:
            assert row['flash'] is None and row['skipped'] == 'flash-attn is not installed'
    assert 'finished' in r


@pytest.mark.parametrize('name,flops', [('NVIDIA H200', 989e12),
                                        ('NVIDIA H100 80GB HBM3', 989e12),
                                        ('NVIDIA H100 PCIe', 756e12),
                                        ('NVIDIA H100 NVL', 835e12),
                                        ('NVIDIA A100-SXM4-80GB', 312e12),
                                        ('NVIDIA GeForce RTX 4090', None)])
def test_peak_table_by_device_name(monkeypatch, name, flops):
    tool = load_tool(TOOL)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: name)
    peak, source = tool.peak_bf16_flops(torch.device('cuda'))
    assert peak == flops
    assert ('not in PEAK_BF16_FLOPS' in source) == (flops is None)
    assert tool.peak_bf16_flops(torch.device('cuda'), 100.0)[0] == 100e12
    assert tool.peak_bf16_flops(torch.device('cpu'))[0] is None


def test_a_failing_row_keeps_the_others_and_the_json(tmp_path):
    tool = load_tool(TOOL)
    out = tmp_path / 'sub' / 'r.json'
    check = tool.Check(tool.parse_args(['--dry-run', '--out', str(out)]))

    def fn(x):
        if x == 'bad':
            raise RuntimeError('boom')
        return dict(value=x)

    check.rows('train', [('a', 'ok'), ('b', 'bad'), ('c', 'fine')], fn)
    r = json.loads(out.read_text())
    assert r['train']['a']['value'] == 'ok' and r['train']['c']['value'] == 'fine'
    assert r['train']['b']['error'] == 'RuntimeError: boom'
    assert not list(out.parent.glob('*.tmp*'))  # written through a temporary name


def test_section_budget_skips_rows_once_spent(tmp_path, monkeypatch):
    tool = load_tool(TOOL)
    check = tool.Check(tool.parse_args(['--out', str(tmp_path / 'r.json'), '--device', 'cpu']))
    monkeypatch.setitem(tool.SECTION_BUDGET_S, 'mfu', 0)
    check.rows('mfu', [('x', 1)], lambda x: dict(value=x))
    row = json.loads((tmp_path / 'r.json').read_text())['mfu']['x']
    assert row['error'].startswith('skipped: the mfu section')
