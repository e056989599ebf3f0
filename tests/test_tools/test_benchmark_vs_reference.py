"""tools/analysis_tools/benchmark_vs_reference.py without the reference checkouts (CI has
none): the shims' semantics, the source-fix loader, the ratio maths, clear errors, and our side
of every row building and stepping (training) or running (inference) at a tiny size."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.registry import DefaultScope

from helpers import ROOT, load_tool

TOOL = 'tools/analysis_tools/benchmark_vs_reference.py'
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')
NEW_ROWS = ('dynamiccity_dit', 'occsora_vq_8x200x200x16', 'occsora_dit',
            'uniscene_vae_2x200x200x16', 'uniscene_dit')
INFERENCE_ROWS = ('sample_25_steps_cfg_uniscene', 'sample_25_steps_cfg_dynamiccity',
                  'sample_25_steps_cfg_occsora', 'forecast_rollout',
                  'tokenizer_encode_decode_uniscene', 'tokenizer_encode_decode_occworld')
# Trained-network parameters (total, trainable) of the reference side, measured on the
# checkouts (the tool's --worker ROW reference, 2026-12-03); ours must keep them at the full
# row sizes.
REFERENCE_PARAMS = {
    'dynamiccity_vae_8x64x64x8': (1_641_432, 1_641_432),
    'dynamiccity_vae_16x128x128x8': (1_699_288, 1_699_288),
    'dynamiccity_dit': (43_730_432, 43_175_936),  # DiT-DC/2, 76 x 76 rollout
    'occsora_vq_8x200x200x16': (137_369_744, 137_369_744),
    'occsora_dit': (36_819_200, 36_819_200),  # positions trained, as the reference's
    'occworld_vqvae_4x200x200x16': (14_168_272, 14_168_272),
    'occworld_wm_4+1': (72_382_762, 58_214_490),  # with the frozen VQ-VAE
    'uniscene_vae_2x200x200x16': (11_290_264, 11_290_264),
    'uniscene_dit': (58_183_200, 57_860_640),  # with the 4-value meta embedder
}

SHIM_CHECK = r'''
import sys, torch
sys.path.insert(0, {tools!r})
import vs_reference_refs as r
r.install_shims()
import torch.nn.functional as F
from flash_attn import flash_attn_qkvpacked_func, flash_attn_kvpacked_func
from timm.layers import Mlp
from timm.models.vision_transformer import Attention, PatchEmbed
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
att = Attention(32, num_heads=4, qkv_bias=True).eval()
assert sum(p.numel() for p in att.parameters()) == 32 * 96 + 96 + 32 * 32 + 32
x = torch.randn(2, 5, 32)
q, k, v = att.qkv(x).reshape(2, 5, 3, 4, 8).permute(2, 0, 3, 1, 4)
manual = (torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, -1) @ v).transpose(1, 2)
assert torch.allclose(att(x), att.proj(manual.reshape(2, 5, 32)), atol=1e-5)
y = torch.zeros(3)
assert y.cuda() is y
import skimage.draw, skvideo.io
from torchvision import models
for fn in (skimage.draw.polygon, skvideo.io.vwrite, models.resnet18):
    try:
        fn([0])
    except RuntimeError as e:
        assert 'stub' in str(e)
    else:
        raise AssertionError('stub did not raise')
assert sys.dont_write_bytecode
print('SHIMS OK')
'''


def test_shims_match_the_real_semantics():
    code = SHIM_CHECK.format(tools=TOOLS)
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'SHIMS OK' in res.stdout


FIX_CHECK = r'''
import sys
sys.path.insert(0, {tools!r})
import vs_reference_refs as r
r.SOURCE_FIXES['Demo'] = {{'pkg.broken': [(')\n)\n', ')\n')], 'pkg.other': [('nope', 'x')]}}
r.CHECKOUTS['Demo'] = ('', 'a demo checkout')
sys.dont_write_bytecode = True
r.enter_checkout('Demo', {root!r})
import pkg.broken
assert pkg.broken.VALUE == 3
try:
    import pkg.other
except ImportError as e:
    assert "expected the text 'nope' once" in str(e) and 'other.py' in str(e), e
else:
    raise AssertionError('a fix whose text is missing must fail the import')
print('FIX OK')
'''


def test_source_fixes_compile_the_fixed_text_and_fail_on_another_commit(tmp_path):
    pkg = tmp_path / 'Demo' / 'pkg'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'broken.py').write_text('VALUE = (1 + 2\n)\n)\n')  # a stray ")": SyntaxError
    (pkg / 'other.py').write_text('VALUE = 1\n')
    res = subprocess.run([sys.executable, '-c', FIX_CHECK.format(tools=TOOLS, root=str(tmp_path))],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'FIX OK' in res.stdout
    assert not list(tmp_path.rglob('*.pyc'))  # nothing written into the checkout


def _side(sec, cpu, rss, step=None):
    return dict(sec_per_iter=sec, cpu_sec_per_iter=cpu, peak_rss_mb=rss, step_peak_rss_mb=step,
                params=10)


def test_summarise_ratios_and_targets():
    tool = load_tool(TOOL)
    rounds = [dict(ours=_side(2.0, 1.0, 100, 50), reference=_side(5.0, 3.0, 400, 200)),
              dict(ours=_side(4.0, 1.0, 100, 50), reference=_side(7.0, 3.0, 400, 200))]
    rounds[0]['ours']['precision'] = 'bf16-autocast'
    s = tool.summarise('occworld_wm_4+1', rounds)
    assert s['ours_s'] == 3.0 and s['reference_s'] == 6.0
    assert s['time_ratio'] == 2.0 and s['cpu_time_ratio'] == 3.0
    assert s['time_ratio_per_round'] == [2.5, 1.75]
    assert s['memory_ratio'] == 0.25 and s['step_memory_ratio'] == 0.25
    assert s['met'] is True
    assert s['precision'] == dict(ours='bf16-autocast', reference='fp32')
    assert 'params 10 / 10 (equal)' in tool.row_line('x', s)
    rounds[0]['reference'] = _side(2.0, 1.0, 150)
    rounds[1]['reference'] = _side(2.0, 1.0, 150)
    s = tool.summarise('occworld_wm_4+1', rounds)
    assert s['time_ratio'] == pytest.approx(2 / 3) and s['met'] is False
    assert 'step_memory_ratio' not in s  # one side could not reset its peak counter


def test_summarise_sampling_rows_show_where_the_ratio_comes_from():
    tool = load_tool(TOOL)

    def side(steps, sampler, per_step, decode):
        r = _side(steps * per_step + decode, 1.0, 100)
        r.update(steps=steps, sampler=sampler, parts=dict(
            loop=dict(sec_per_unit=per_step), decode=dict(sec=decode)))
        return r
    s = tool.summarise('sample_25_steps_cfg_uniscene', [dict(
        ours=side(25, 'dpmpp_2m', 1.0, 5.0), reference=side(50, 'ddim', 2.0, 5.0))])
    assert s['time_ratio'] == 105 / 30 and s['per_step_time_ratio'] == 2.0
    assert s['steps'] == dict(ours=25, reference=50) and s['time_target'] == 5.0
    assert s['met'] is False  # 3.5 < 5
    assert s['memory_target'] is None  # sampling: a time target only
    fast = tool.summarise('sample_25_steps_cfg_uniscene', [dict(
        ours=side(10, 'dpmpp_2m', 1.0, 5.0), reference=side(50, 'ddim', 2.0, 5.0))])
    assert fast['met'] is True and fast['memory_ratio'] == 1.0  # 7x, memory not judged
    fc = tool.summarise('forecast_rollout', [dict(ours=_side(1.0, 1.0, 100),
                                                  reference=_side(4.0, 1.0, 100))])
    assert fc['met'] is None and 'no target (reported)' in tool.row_line('forecast_rollout', fc)
    line = tool.row_line('sample_25_steps_cfg_uniscene', s)
    assert 'ours 25 dpmpp_2m steps, reference 50 ddim steps (2.0x the steps)' in line
    assert 'per-step time ratio 2.00' in line


def test_summarise_failed_rows_keep_the_error():
    tool = load_tool(TOOL)
    s = tool.summarise('x', [dict(ours=_side(1, 1, 1), reference=dict(error='boom'))])
    assert s['error'] == 'boom' and 'time_ratio' not in s


def test_cli_needs_a_reference_root_and_names_unknown_rows(capsys, tmp_path):
    tool = load_tool(TOOL)
    with pytest.raises(SystemExit, match='--reference-root'):
        tool.main(['--rows', 'occworld_wm_4+1'])
    assert tool.main(['--reference-root', str(tmp_path), '--rows', 'no_such_row']) == []
    assert 'no_such_row: not measured: unknown row' in capsys.readouterr().out
    assert set(NEW_ROWS) <= set(tool.ROWS) and not set(NEW_ROWS) & set(tool.NOT_BUILT)
    assert set(INFERENCE_ROWS) <= set(tool.ROWS) and not tool.NOT_BUILT
    # the table's names stand for their variants
    assert tool.expand_rows(['sample_25_steps_cfg', 'forecast_rollout']) == [
        'sample_25_steps_cfg_dynamiccity', 'sample_25_steps_cfg_occsora',
        'sample_25_steps_cfg_uniscene', 'forecast_rollout']
    assert tool.expand_rows(['tokenizer_encode_decode']) == [
        'tokenizer_encode_decode_occworld', 'tokenizer_encode_decode_uniscene']
    assert tool.main(['--reference-root', str(tmp_path), '--rows', 'occworld_wm_4+1',
                      '--size', 'small']) == []
    assert "occworld_wm_4+1: not measured: no 'small' size" in capsys.readouterr().out


def test_row_sizes_and_the_real_frame_path():
    tool = load_tool(TOOL)
    spec = tool.row_spec('uniscene_dit', 'tiny')
    assert (spec['frames'], spec['grid'], spec['latent'], spec['size']) == (
        2, (32, 32, 16), (4, 2, 8, 8), 'tiny')
    assert tool.row_spec('dynamiccity_dit', 'tiny')['size'] == 'small'  # no tiny of its own
    assert tool.row_spec('occsora_dit', 'small')['latent'] == (128, 4, 25, 25)
    with pytest.raises(SystemExit, match="no 'small' size"):
        tool.row_spec('occworld_vqvae_4x200x200x16', 'small')
    from occworld4d.evaluation.benchmark import REAL_OCC3D_FRAME
    assert tool.REAL_OCC3D_FRAME == REAL_OCC3D_FRAME
    a, b = tool.row_data(tool.row_spec('occsora_dit', 'tiny')), tool.row_data(
        tool.row_spec('occsora_dit', 'tiny'))
    assert all(torch.equal(a[k], b[k]) for k in ('latent', 't', 'noise', 'trajectory'))
    assert a['noise'].shape == (2, 128, 1, 5, 5)


def _worker(row, side, *args):
    """One measured worker process of the tool (1 OpenMP thread)."""
    return subprocess.run([sys.executable, osp.join(ROOT, TOOL), '--worker', row, side, *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))


def _our_worker_json(row, *args):
    res = _worker(row, 'ours', '--size', 'tiny', *args)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('row,folder', [('occworld_wm_4+1', 'OccWorld'),
                                        ('uniscene_dit', 'UniScene'),
                                        ('sample_25_steps_cfg_dynamiccity', 'DynamicCity')])
def test_missing_reference_checkout_is_one_clear_error(tmp_path, row, folder):
    res = _worker(row, 'reference', '--reference-root', str(tmp_path))
    assert res.returncode != 0
    assert f'{tmp_path}/{folder} not found (expected the {folder} reference checkout' in res.stderr
    assert 'Traceback' not in res.stderr


def test_tiny_sizes_are_ours_only(tmp_path):
    res = _worker('occsora_dit', 'reference', '--size', 'tiny', '--reference-root', str(tmp_path))
    assert res.returncode != 0 and 'for our side only' in res.stderr


def test_our_worker_reports_a_step_with_amp():
    out = _our_worker_json('uniscene_vae_2x200x200x16', '--amp')
    assert out['precision'] == 'bf16-autocast' and out['size'] == 'tiny'
    assert out['params'] == REFERENCE_PARAMS['uniscene_vae_2x200x200x16'][0]
    assert out['input'] == [1, 2, 32, 32, 16] and out['sec_per_iter'] > 0


def test_our_inference_worker_reports_the_estimate_with_amp():
    out = _our_worker_json('sample_25_steps_cfg_uniscene', '--amp')
    loop, dec = out['parts']['loop'], out['parts']['decode']
    assert (out['steps'], out['sampler'], out['timed_steps']) == (25, 'dpmpp_2m', 2)
    assert out['network_batch'] == 2 and out['guidance'] == 4.0  # the doubled CFG batch
    assert loop['timed_units'] == 2 and loop['whole_units'] == 25
    assert out['sec_per_iter'] == pytest.approx(25 * loop['sec_per_unit'] + dec['sec'])
    assert out['precision'] == 'bf16-autocast' and '25 dpmpp_2m steps x' in out['detail']


@pytest.mark.parametrize('row', INFERENCE_ROWS)
def test_our_side_of_each_inference_row_runs_at_a_tiny_size(row):
    tool = load_tool(TOOL)
    if TOOLS not in sys.path:
        sys.path.insert(0, TOOLS)
    import vs_reference_infer_ours as ours
    spec = tool.row_spec(row, 'tiny')
    data = tool.row_data(spec)
    parts, info = ours.build(row, spec, data)
    with torch.no_grad():
        outs = [fn() for _, fn, _, _ in parts]
    B, T, H = spec['batch'], spec['frames'], spec.get('history')
    X, Y, Z = spec['grid']
    if spec['kind'] == 'sample':
        assert [p[0] for p in parts] == ['loop', 'decode'] and parts[0][2:] == (2, 25)
        assert (info['steps'], info['sampler']) == (25, 'dpmpp_2m')
        assert info['network_batch'] == (1 if spec['ref'] == 'DynamicCity' else 2)
        assert info['frozen_tokenizer_params'] > 0
        if spec['ref'] == 'OccSora':  # tiny: 1 x 5 x 5 tokens = 8 x 40 x 40 voxels
            T, X, Y = (8 * d for d in spec['latent'][1:])
    elif spec['kind'] == 'forecast':
        assert parts[0][2:] == (T - H, T - H) and info['future'] == T - H
        T = T - H
    assert tuple(outs[-1].shape) == (B, T, X, Y, Z)  # voxels of the decode
    assert info['params'] > 0 and info['precision'] == 'fp32'


@pytest.mark.parametrize('row', NEW_ROWS)
def test_our_side_of_each_new_row_steps_at_a_tiny_size(row):
    tool = load_tool(TOOL)
    ours = _ours_module()
    spec = tool.row_spec(row, 'tiny')
    loss, info = ours.build(row, spec, tool.row_data(spec))
    value = tool.backward_step(loss)()
    assert torch.isfinite(torch.tensor(value)) and info['precision'] == 'fp32'
    assert info['params'] > 0 and info['trainable'] > 0
    if spec['kind'] == 'dit':
        assert info['frozen_tokenizer_params'] > 0  # the frozen random tokenizer


@pytest.mark.parametrize('row', sorted(REFERENCE_PARAMS))
def test_our_full_size_models_have_the_references_parameters(row):
    tool = load_tool(TOOL)
    ours = _ours_module()
    spec = tool.row_spec(row)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = ours.MODELS.build(ours.model_cfg(spec))
    net = model.denoiser if spec['kind'] == 'dit' else model
    counts = (sum(p.numel() for p in net.parameters()),
              sum(p.numel() for p in net.parameters() if p.requires_grad))
    assert counts == REFERENCE_PARAMS[row]


def _ours_module():
    if TOOLS not in sys.path:
        sys.path.insert(0, TOOLS)
    import vs_reference_ours
    return vs_reference_ours
