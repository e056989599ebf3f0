"""tools/model_converters/{occworld,occsora}_to_occworld4d.py.

The reference layouts are the key -> shape lists that the reference models build
(tests/data/model_converters/*_reference_shapes.json, dumped once from the reference code
outside the repository; its ``source`` entry says how). Each test fills them with seeded
values, saves them the way the reference's training saves them, converts, loads the result
strictly into the occworld4d model of a tiny config, runs it, converts back and compares
every key and tensor.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_checkpoint

from helpers import ROOT, load_tool, tool_main
from occworld4d.converters import check_state_dict, convert, model_shapes
from occworld4d.registry import MODELS

DATA = osp.join(ROOT, 'tests/data/model_converters')
OCCWORLD_TOOL = 'tools/model_converters/occworld_to_occworld4d.py'
OW_VQ_TINY = 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'
OW_WM_TINY = 'configs/occworld/occworld_wm_tiny_synthetic-city.py'
OCCSORA_TOOL = 'tools/model_converters/occsora_to_occworld4d.py'
OS_VQ_TINY = 'configs/occsora/occsora_vqvae_tiny_synthetic-city.py'
OS_DIT_TINY = 'configs/occsora/occsora_dit_tiny_synthetic-city.py'


def reference_shapes(name: str, size: str) -> dict:
    with open(osp.join(DATA, f'{name}_reference_shapes.json')) as f:
        return json.load(f)[size]


def seeded(shapes: dict, seed: int = 0) -> dict:
    """Seeded values in the reference layout (BatchNorm statistics kept plausible)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in shapes.items():
        if k.endswith('num_batches_tracked'):
            out[k] = torch.tensor(7)
        elif k.endswith('running_var'):
            out[k] = 0.5 + torch.rand(s, generator=g)
        else:
            out[k] = 0.1 * torch.randn(s, generator=g)
    return out


def build(config: str, **options):
    """The model of ``config``; ``options`` as --cfg-options (``model.x.y=v``)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.model.pop('tokenizer_ckpt', None)
    cfg.merge_from_dict(options)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        return MODELS.build(cfg.model).eval()


def run(tool: str, *args) -> tuple:
    """(exit status, stdout, stderr) of the tool's main under its CLI wrapper."""
    module = load_tool(tool)
    return module.run_cli(module.main, [str(a) for a in args])


# --------------------------------------------------------------------------------------------
# OccWorld


def reference_training_checkpoint(state: dict) -> dict:
    """What the reference's train.py saves."""
    return {'state_dict': state, 'optimizer': {'state': {}, 'param_groups': []},
            'scheduler': {'t_initial': 10}, 'epoch': 3, 'global_iter': 30,
            'best_val_iou': [0.1], 'best_val_miou': [0.05]}


def test_occworld_released_layout_matches_the_nuscenes_configs():
    """The full-size reference key set converts onto the models of the Occ3D-nuScenes configs
    (every key, every shape), both parts."""
    from occworld4d.converters.occworld import (VQVAE_CONFIG, WM_CONFIG, conversion_for,
                                                detect_part)
    zero = torch.zeros(())  # expanded views: the shapes without the memory
    full = {k: zero.expand(s) for k, s in reference_shapes('occworld', 'full').items()}
    vq = {k[len('vae.'):]: v for k, v in full.items() if k.startswith('vae.')}
    assert detect_part(full) == 'wm' and detect_part(vq) == 'vqvae'
    for state, part, config in ((full, 'wm', WM_CONFIG), (vq, 'vqvae', VQVAE_CONFIG)):
        out = convert(state, conversion_for(part), 'released')
        check_state_dict(out, model_shapes(osp.join(ROOT, config)), 'released', config)
    assert sum(v.numel() for v in full.values()) == 72_385_578  # 58,217,306 + 14,168,272


def test_occworld_world_model_converts_loads_runs_and_reverses(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    ref = seeded(reference_shapes('occworld', 'tiny'))
    src, dst, back = tmp_path / 'epoch_3.pth', tmp_path / 'ours.pth', tmp_path / 'back.pth'
    torch.save(reference_training_checkpoint(ref), src)
    status = run(OCCWORLD_TOOL, src, dst, '--config', OW_WM_TINY)
    assert status == 0
    model = build(OW_WM_TINY)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)  # as tools/test.py
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['part'] == 'wm' and meta['reference_epoch'] == 3
    # the converted weights are the reference's, e.g. a fused attention and a split one
    sd = model.state_dict()
    assert torch.equal(sd['transformer.enc_temporal.0.1.attn.kv.weight'],
                       ref['transformer.temporal_attentions_en.0.1.0.in_proj_weight'][16:])
    assert torch.equal(sd['tokenizer.encoder.down.1.attn.0.attn.qkv.weight'][32:64],
                       ref['vae.encoder.down.1.attn.0.k.weight'].flatten(1))  # width 32
    g = torch.Generator().manual_seed(1)
    voxels = torch.randint(0, 12, (1, 3, 32, 32, 8), generator=g)
    with torch.no_grad():
        logits = model(dict(voxels=voxels), mode='tensor')
    assert logits.shape == (1, 2, 64, 16, 16) and torch.isfinite(logits).all()

    assert run(OCCWORLD_TOOL, dst, back, '--reverse') == 0
    restored = torch.load(back, weights_only=True)['state_dict']
    assert sorted(restored) == sorted(ref)
    for key, value in ref.items():
        assert torch.equal(restored[key], value), key


def test_occworld_vqvae_converts_and_reverses(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    ref = {k[len('vae.'):]: v for k, v in seeded(reference_shapes('occworld', 'tiny')).items()
           if k.startswith('vae.')}
    src, dst, back = tmp_path / 'vqvae.pth', tmp_path / 'ours.pth', tmp_path / 'back.pth'
    torch.save({'module.' + k: v for k, v in ref.items()}, src)  # a DDP-prefixed plain dict
    assert run(OCCWORLD_TOOL, src, dst, '--config', OW_VQ_TINY, '--part', 'vqvae') == 0
    model = build(OW_VQ_TINY)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    assert model.state_dict()['quantizer.steps_unused'].abs().sum() == 0
    voxels = torch.randint(0, 12, (1, 1, 32, 32, 8), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ids = model.encode_to_indices(voxels)
        logits = model.decode_indices(ids, size=(32, 32))
    assert ids.shape == (1, 1, 16, 16) and logits.shape == (1, 12, 1, 32, 32, 8)
    assert run(OCCWORLD_TOOL, dst, back, '--reverse') == 0
    restored = torch.load(back, weights_only=True)['state_dict']
    assert sorted(restored) == sorted(ref)
    assert all(torch.equal(restored[k], v) for k, v in ref.items())


def test_occworld_converted_checkpoint_runs_in_tools_test(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    src, dst = tmp_path / 'ref.pth', tmp_path / 'ours.pth'
    torch.save(reference_training_checkpoint(seeded(reference_shapes('occworld', 'tiny'))), src)
    assert run(OCCWORLD_TOOL, src, dst, '--config', OW_WM_TINY) == 0
    out = tmp_path / 'm.json'
    tool_main('tools/test.py', OW_WM_TINY, str(dst), '--work-dir', str(tmp_path / 'w'), '--out',
              str(out), '--cfg-options', 'test_dataloader.dataset.num_scenes=1')
    metrics = json.loads(out.read_text())
    # the seeded reference weights: the same numbers with 1 and 2 threads
    assert metrics['occworld/mIoU_avg'] == pytest.approx(0.18529, abs=1e-4), metrics
    assert metrics['occworld/IoU_avg'] == pytest.approx(0.28780, abs=1e-4), metrics
    assert metrics['plan/L2_3s'] == pytest.approx(1.47959, abs=1e-4), metrics


def test_occworld_bad_files_and_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    ref = seeded(reference_shapes('occworld', 'tiny'))
    good = tmp_path / 'good.pth'
    torch.save(reference_training_checkpoint(ref), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:1000])
    assert run(OCCWORLD_TOOL, truncated, tmp_path / 'x.pth', '--config', OW_WM_TINY) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and str(truncated) in err and 'truncated or corrupt' in err
    assert not (tmp_path / 'x.pth').exists()

    extra = dict(ref, **{'transformer.queries.weight': torch.zeros(2, 2),
                         'vae.extra.weight': torch.zeros(1)})
    del extra['transformer.conv_out.bias']
    bad = tmp_path / 'unknown.pth'
    torch.save({'state_dict': extra}, bad)
    assert run(OCCWORLD_TOOL, bad, tmp_path / 'x.pth', '--config', OW_WM_TINY) == 2
    err = capsys.readouterr().err
    assert 'transformer.queries.weight' in err and 'vae.extra.weight' in err
    assert str(bad) in err
    # a key the rules know but the config lacks / a wrong size: the full list, with shapes
    del extra['transformer.queries.weight'], extra['vae.extra.weight']
    torch.save({'state_dict': extra}, bad)
    assert run(OCCWORLD_TOOL, bad, tmp_path / 'x.pth', '--config', OW_WM_TINY) == 2
    err = capsys.readouterr().err
    assert '1 missing key(s)' in err and 'transformer.conv_out.bias' in err
    assert run(OCCWORLD_TOOL, good, tmp_path / 'x.pth', '--config', OW_VQ_TINY) == 2
    assert f'does not convert to the occworld4d model of {OW_VQ_TINY}' in capsys.readouterr().err
    assert run(OCCWORLD_TOOL, good, tmp_path / 'x.pth', '--part', 'vqvae') == 2
    assert '--part vqvae given' in capsys.readouterr().err


def test_occworld_reference_configs_use_exact_gelu():
    """The reference's FFNs use nn.GELU() (exact); the configs that load its checkpoint too."""
    from occworld4d.converters.occworld import WM_CONFIG
    for config in (WM_CONFIG, 'configs/occworld/occworld_wm-dome4to6_8xb1-200e_occ3d-nuscenes.py',
                   'configs/occworld/occworld_wm_8xb1-200e_carlasc.py',
                   'configs/occworld/occworld_wm_8xb1-200e_occ3d-waymo.py'):
        cfg = Config.fromfile(osp.join(ROOT, config))
        assert cfg.model.transformer.mlp_act == 'gelu', config
    tiny = build(OW_WM_TINY, **{'model.transformer.mlp_act': 'gelu'})
    assert tiny.transformer.enc_temporal[0][0].ffn.act.approximate == 'none'
    assert tiny.transformer.dec_pose_layers[0][0].ffn.act.approximate == 'none'
    with pytest.raises(ValueError, match='mlp_act must be one of'):
        build(OW_WM_TINY, **{'model.transformer.mlp_act': 'relu'})


# --------------------------------------------------------------------------------------------
# OccSora


def reference_dit_file(state: dict) -> dict:
    """What the reference's train_2.py saves (EMA deliberately different from the model)."""
    import argparse
    return {'model': {k: v + 1.0 for k, v in state.items()}, 'ema': state,
            'opt': {'state': {}, 'param_groups': []},
            'args': argparse.Namespace(model='DiT-XL/2', global_batch_size=16)}


def test_occsora_released_layout_matches_the_nuscenes_configs():
    from occworld4d.converters.occsora import (DIT_CONFIG, VQVAE_CONFIG, generator_conversion,
                                               vqvae_conversion)
    zero = torch.zeros(())
    full = {part: {k: zero.expand(s) for k, s in shapes.items()}
            for part, shapes in reference_shapes('occsora', 'full').items()}
    out = convert(full['vqvae'], vqvae_conversion(), 'released')
    check_state_dict(out, model_shapes(osp.join(ROOT, VQVAE_CONFIG)), 'released', VQVAE_CONFIG)
    tok, dit = generator_conversion()
    out = {**convert(full['vqvae'], tok, 'released'), **convert(full['dit'], dit, 'released')}
    check_state_dict(out, model_shapes(osp.join(ROOT, DIT_CONFIG)), 'released', DIT_CONFIG)
    assert sum(v.numel() for v in full['dit'].values()) == 36_819_200


def test_occsora_reference_config_has_the_reference_behaviour():
    from occworld4d.converters.occsora import DIT_CONFIG
    cfg = Config.fromfile(osp.join(ROOT, DIT_CONFIG))
    assert cfg.model.denoiser.trajectory_scale == 1.0  # raw values, as the reference
    assert cfg.model.denoiser.learn_pos_embed is True  # a trained table
    assert cfg.model.cond_drop_prob == 0.0  # never dropped
    assert cfg.model.sample_cfg.guidance_scale == 1.0  # its CFG is the conditional output
    ours = Config.fromfile(
        osp.join(ROOT, 'configs/occsora/occsora_dit_8xb2-1200k_occ3d-nuscenes.py'))
    assert ours.model.denoiser.trajectory_scale == 0.1 and ours.model.cond_drop_prob == 0.1
    # the DiT of both follows DiT's tanh GELU (the reference's approx_gelu)
    dit = build(OS_DIT_TINY)
    assert dit.denoiser.blocks[0].mlp.act.approximate == 'tanh'


def test_occsora_tokenizer_converts_loads_runs_and_reverses(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    ref = seeded(reference_shapes('occsora', 'tiny')['vqvae'])
    src, dst, back = tmp_path / 'epoch_150.pth', tmp_path / 'ours.pth', tmp_path / 'back.pth'
    torch.save(reference_training_checkpoint(ref), src)
    assert run(OCCSORA_TOOL, src, dst, '--config', OS_VQ_TINY) == 0
    model = build(OS_VQ_TINY)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    sd = model.state_dict()
    assert torch.equal(sd['encoder.res_stack.0.block.8.attn_h.qkv.weight'][32:64],
                       ref['encoder_gpt.res_stack.0.block.8.attn_h.w_ks.weight'])
    voxels = torch.randint(0, 12, (1, 8, 32, 32, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ids = model.encode_to_indices(voxels)
        logits = model.decode_indices(ids)
    assert ids.shape == (1, 4, 8, 8) and logits.shape == (1, 12, 8, 32, 32, 8)
    assert torch.isfinite(logits).all()
    assert run(OCCSORA_TOOL, dst, back, '--reverse') == 0
    restored = torch.load(back, weights_only=True)['state_dict']
    assert sorted(restored) == sorted(ref)
    for key, value in ref.items():
        assert torch.equal(restored[key], value) and restored[key].dtype == value.dtype, key


def test_occsora_dit_converts_loads_samples_and_reverses(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    shapes = reference_shapes('occsora', 'tiny')
    ref_tok, ref_dit = seeded(shapes['vqvae']), seeded(shapes['dit'], seed=1)
    tok, dit = tmp_path / 'vqvae.pth', tmp_path / '0010000.pt'
    torch.save(reference_training_checkpoint(ref_tok), tok)
    torch.save(reference_dit_file(ref_dit), dit)
    dst, back, back_tok = tmp_path / 'gen.pth', tmp_path / 'back.pt', tmp_path / 'back_tok.pth'
    assert run(OCCSORA_TOOL, dit, dst, '--config', OS_DIT_TINY) == 2  # needs --tokenizer
    assert '--tokenizer' in capsys.readouterr().err
    assert run(OCCSORA_TOOL, dit, dst, '--tokenizer', tok, '--config', OS_DIT_TINY) == 0
    assert f'sample: python tools/sample.py {OS_DIT_TINY}' in capsys.readouterr().out
    model = build(OS_DIT_TINY)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    sd = model.state_dict()
    assert torch.equal(sd['denoiser.cond_embedder.4.weight'], ref_dit['mlp_trag.fc3.weight'])
    assert torch.equal(sd['denoiser.pos_embed'], ref_dit['pos_embed'])  # EMA, not model + 1
    x = torch.randn(2, 16, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = model.denoiser(x, torch.tensor([3, 50]), trajectory=torch.randn(2, 8, 3))
    assert out.shape == (2, 32, 4, 8, 8) and torch.isfinite(out).all()
    samples = tmp_path / 'samples'  # tools/sample.py loads it strictly and samples
    load_tool('tools/sample.py').main([osp.join(ROOT, OS_DIT_TINY), str(dst), '--task',
                                       'trajectory', '--trajectory', 'left', '--steps', '2',
                                       '--no-render', '--out', str(samples)])
    import numpy as np
    with np.load(samples / 'sample_0.npz') as f:
        assert f['semantics'].shape == (8, 32, 32, 8)
    assert run(OCCSORA_TOOL, dit, tmp_path / 'model.pth', '--tokenizer', tok, '--config',
               OS_DIT_TINY, '--weights', 'model') == 0
    raw = torch.load(tmp_path / 'model.pth', weights_only=True)['state_dict']
    assert torch.equal(raw['denoiser.pos_embed'], ref_dit['pos_embed'] + 1.0)

    assert run(OCCSORA_TOOL, dst, back, '--reverse', '--tokenizer-out', back_tok) == 0
    import argparse
    with torch.serialization.safe_globals([argparse.Namespace]):
        restored = torch.load(back, weights_only=True)
    assert sorted(restored) == ['args', 'ema', 'model', 'opt']
    for entry in ('model', 'ema'):
        assert sorted(restored[entry]) == sorted(ref_dit)
        assert all(torch.equal(restored[entry][k], v) for k, v in ref_dit.items())
    assert len(restored['opt']['param_groups'][0]['params']) == len(ref_dit)
    tok_back = torch.load(back_tok, weights_only=True)['state_dict']
    assert sorted(tok_back) == sorted(ref_tok)
    assert all(torch.equal(tok_back[k], v) for k, v in ref_tok.items())


def test_occsora_bad_files_and_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    shapes = reference_shapes('occsora', 'tiny')
    ref_dit = seeded(shapes['dit'])
    dit = tmp_path / 'dit.pt'
    torch.save(reference_dit_file(ref_dit), dit)
    truncated = tmp_path / 'cut.pt'
    truncated.write_bytes(dit.read_bytes()[: len(dit.read_bytes()) // 2])
    tok = tmp_path / 'tok.pth'
    torch.save({'state_dict': seeded(shapes['vqvae'])}, tok)
    assert run(OCCSORA_TOOL, truncated, tmp_path / 'x.pth', '--tokenizer', tok) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and str(truncated) in err
    bad = dict(ref_dit, **{'y_embedder.embedding_table.weight': torch.zeros(3, 32)})
    torch.save({'model': bad, 'ema': bad}, tmp_path / 'bad.pt')
    assert run(OCCSORA_TOOL, tmp_path / 'bad.pt', tmp_path / 'x.pth', '--tokenizer', tok,
               '--config', OS_DIT_TINY) == 2
    err = capsys.readouterr().err
    assert 'y_embedder.embedding_table.weight' in err and 'bad.pt' in err
    assert run(OCCSORA_TOOL, dit, tmp_path / 'x.pth', '--tokenizer', dit,
               '--config', OS_DIT_TINY) == 2
    assert 'expected --tokenizer (a tokenizer checkpoint)' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists()
