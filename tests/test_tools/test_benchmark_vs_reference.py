import os.path as osp
import subprocess
import sys

import pytest

from helpers import ROOT, load_tool

TOOL = 'tools/analysis_tools/benchmark_vs_reference.py'

SHIM_CHECK = r'''
import sys, torch
sys.path.insert(0, {tools!r})
import benchmark_vs_reference as t
t.install_shims()
import torch.nn.functional as F
from flash_attn import flash_attn_qkvpacked_func, flash_attn_kvpacked_func
from timm.layers import Mlp
from timm.models.vision_transformer import PatchEmbed
torch.manual_seed(0)
qkv = torch.randn(2, 7, 3, 4, 8)  # (B, N, 3, H, D), flash-attn's layout
q, k, v = (x.transpose(1, 2) for x in qkv.unbind(2))
ref = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, -1) @ v  # (B, H, N, D)
out = flash_attn_qkvpacked_func(qkv)
assert out.shape == (2, 7, 4, 8)
assert torch.allclose(out, ref.transpose(1, 2), atol=1e-5)
out2 = flash_attn_kvpacked_func(qkv[:, :, 0], qkv[:, :, 1:])
assert torch.allclose(out2, out, atol=1e-6)
m = Mlp(16, 64, drop=0.1)
assert sum(p.numel() for p in m.parameters()) == 16 * 64 + 64 + 64 * 16 + 16
pe = PatchEmbed(32, 2, 4, 24)
assert pe.num_patches == 256 and pe(torch.zeros(1, 4, 32, 32)).shape == (1, 256, 24)
x = torch.zeros(3)
assert x.cuda() is x
import skimage.draw
try:
    skimage.draw.polygon([0], [0])
except RuntimeError as e:
    assert 'stub' in str(e)
else:
    raise AssertionError('stub did not raise')
print('SHIMS OK')
'''


def test_shims_match_the_real_semantics():
    code = SHIM_CHECK.format(tools=osp.join(ROOT, 'tools', 'analysis_tools'))
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'SHIMS OK' in res.stdout


def _side(sec, cpu, rss, step=None):
    return dict(sec_per_iter=sec, cpu_sec_per_iter=cpu, peak_rss_mb=rss, step_peak_rss_mb=step,
                params=10)


def test_summarise_ratios_and_targets():
    tool = load_tool(TOOL)
    rounds = [dict(ours=_side(2.0, 1.0, 100, 50), reference=_side(5.0, 3.0, 400, 200)),
              dict(ours=_side(4.0, 1.0, 100, 50), reference=_side(7.0, 3.0, 400, 200))]
    s = tool.summarise('occworld_wm_4+1', rounds)
    assert s['ours_s'] == 3.0 and s['reference_s'] == 6.0
    assert s['time_ratio'] == 2.0 and s['cpu_time_ratio'] == 3.0
    assert s['time_ratio_per_round'] == [2.5, 1.75]
    assert s['memory_ratio'] == 0.25 and s['step_memory_ratio'] == 0.25
    assert s['met'] is True
    rounds[0]['reference'] = _side(2.0, 1.0, 150)
    rounds[1]['reference'] = _side(2.0, 1.0, 150)
    s = tool.summarise('occworld_wm_4+1', rounds)
    assert s['time_ratio'] == pytest.approx(2 / 3) and s['met'] is False
    assert 'step_memory_ratio' not in s  # one side could not reset its peak counter


def test_summarise_failed_rows_keep_the_error():
    tool = load_tool(TOOL)
    s = tool.summarise('x', [dict(ours=_side(1, 1, 1), reference=dict(error='boom'))])
    assert s['error'] == 'boom' and 'time_ratio' not in s


def test_cli_needs_a_reference_root_and_names_unbuilt_rows(capsys, tmp_path):
    tool = load_tool(TOOL)
    with pytest.raises(SystemExit, match='--reference-root'):
        tool.main(['--rows', 'occworld_wm_4+1'])
    assert tool.main(['--reference-root', str(tmp_path), '--rows', 'occsora_dit']) == []
    assert 'occsora_dit: not measured: this tool has no builder' in capsys.readouterr().out


def test_missing_reference_checkout_is_one_clear_error(tmp_path):
    res = subprocess.run([sys.executable, osp.join(ROOT, TOOL), '--worker', 'occworld_wm_4+1',
                          'reference', '--reference-root', str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode != 0
    assert f'{tmp_path}/OccWorld not found' in res.stderr
