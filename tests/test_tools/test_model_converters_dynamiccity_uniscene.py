"""DynamicCity and UniScene checkpoint converters (issue 14).

The reference layouts are key -> shape lists that the reference code builds (fixture
tests/data/model_converters/{dynamiccity,uniscene}_reference_shapes.json, written by
instantiating 3DTopia/DynamicCity @ eaf0c6e and Arlo0o/UniScene @ e98413d); the tests fill
them with seeded values, convert, load strictly into the occworld4d model, run it, convert
back and compare every tensor. UniScene's axial switch and OccDiT GELU are pinned to values
computed by hand.
"""
import json
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
import yaml

from helpers import ROOT, load_tool, tool_main

from occworld4d.converters import ConversionError, model_shapes
from occworld4d.converters import dynamiccity as dc
from occworld4d.converters import uniscene as us
from occworld4d.converters.common import run_cli
from occworld4d.models.denoisers import RolloutDiT
from occworld4d.models.denoisers.uniscene_dit import UniSceneOccDiT
from occworld4d.models.layers.attention import Attention
from occworld4d.models.tokenizers import HexPlaneVAE, UniSceneOccVAE
from occworld4d.models.tokenizers.base import filled_on_load
from occworld4d.models.tokenizers.blocks_2d import AxialAttnBlock2d, channel_axis_attention

DATA = osp.join(ROOT, 'tests', 'data', 'model_converters')
DC_TOOL = 'tools/model_converters/dynamiccity_to_occworld4d.py'
US_TOOL = 'tools/model_converters/uniscene_to_occworld4d.py'


def fixture(name):
    with open(osp.join(DATA, f'{name}_reference_shapes.json')) as f:
        return json.load(f)


DC = fixture('dynamiccity')
US = fixture('uniscene')


def seeded(shapes, seed=0, device='cpu'):
    """A reference-layout state dict with seeded values (meta tensors: shapes only)."""
    g = torch.Generator().manual_seed(seed)
    if device == 'meta':
        return {k: torch.empty(s, device='meta') for k, s in shapes.items()}
    return {k: 0.2 * torch.randn(s, generator=g) for k, s in shapes.items()}


def assert_same(a, b):
    assert set(a) == set(b), (sorted(set(a) ^ set(b)))[:10]
    for k in a:
        assert a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k


def shapes_of(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------ DynamicCity
def dc_tiny_vae_kwargs():
    return dc.vae_kwargs_from_conf(DC['vae_tiny_conf'], 'conf.yaml')


def test_dc_full_size_keys_match_the_carlasc_configs():
    """Every reference key of the CarlaSC VAE / DiT-DC/2 maps onto the configs' models."""
    ours = dc.vae_to_ours(seeded(DC['vae_full'], device='meta'), 'vae.ckpt',
                          expected=model_shapes(dc.VAE_CONFIG))
    # every key but the buffers the model fills on loading (seen_classes: all seen)
    assert len(ours) == len([k for k in model_shapes(dc.VAE_CONFIG) if not filled_on_load(k)])
    dit = dc.dit_to_ours(seeded(DC['dit_full'], device='meta'), (), 384, 'dit.ckpt',
                         expected=model_shapes(dc.DIT_CONFIG, sub='denoiser'))
    assert 'pos_embed' in dit and not any(k.startswith('null_') for k in dit)


def test_dc_vae_converts_loads_strictly_runs_and_inverts():
    ref = seeded(DC['vae_tiny'])
    kwargs = dc_tiny_vae_kwargs()
    model = HexPlaneVAE(**kwargs).eval()
    ours = dc.vae_to_ours(ref, 'tiny.ckpt', expected=shapes_of(model))
    model.load_state_dict(ours, strict=True)
    # grouped plane convs: output rows [g Q:(g+1) Q] are plane g's conv, the same function
    q = kwargs['query_channels']
    w = ref['decoder.conv_block.in_layers_h.weight']
    b = ref['decoder.conv_block.in_layers_h.bias']
    planes = [torch.randn(1, kwargs['latent_channels'], 8, s) for s in (8, 4, 4)]  # xy xz yz
    canvas = torch.cat([F.pad(p, (0, 8 - p.shape[-1])) for p in planes], 1)
    grouped = F.conv2d(canvas, w, b, padding=1, groups=3)
    for g, (name, p) in enumerate(zip(('xy', 'xz', 'yz'), planes)):
        conv = model.decoder.conv_block.in_convs[name]
        torch.testing.assert_close(conv(p), grouped[:, g * q:(g + 1) * q, :, :p.shape[-1]],
                                   rtol=1e-5, atol=1e-5)
    voxels = torch.randint(0, kwargs['num_classes'], (1, 8, 16, 16, 8))
    with torch.no_grad():
        logits = model.decode(model.encode(voxels))
    assert logits.shape == (1, 12, 8, 16, 16, 8) and torch.isfinite(logits).all()
    assert_same(dc.ours_to_vae(ours, 'tiny.pth'), ref)


def test_dc_dit_converts_loads_strictly_runs_and_inverts():
    ref = seeded(DC['dit_tiny'], seed=1)
    model = RolloutDiT(hex_shape=(2, 8, 8, 4), in_channels=8, depth=2, hidden_size=32,
                       num_heads=2, num_frames=8).eval()
    ours = dc.dit_to_ours(ref, model.conditions, 32, 'dit.ckpt', expected=shapes_of(model))
    model.load_state_dict(ours, strict=True)
    assert all(not v.any() for k, v in ours.items() if k.startswith('null_embeddings.'))
    # the width-1 layout embedding broadcast to every channel == ours, full width
    canvas = torch.randn(2, 8, 14, 14)
    ref_out = F.conv2d(canvas, ref['layout_emb.embedder.proj.weight'],
                       ref['layout_emb.embedder.proj.bias'], stride=2).flatten(2).transpose(1, 2)
    ours_out = model.cond_embedders['layout'](canvas)
    torch.testing.assert_close(ours_out, ref_out.expand_as(ours_out), rtol=1e-5, atol=1e-6)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        out = model(torch.randn(2, 8, 14, 14, generator=g), torch.tensor([3, 900]),
                    trajectory=torch.randn(2, 8, 3, generator=g), command=torch.tensor([0, 3]),
                    layout=torch.rand(2, 8, 4, 4, generator=g),
                    hexplane=torch.randn(2, 8, 14, 14, generator=g))
    assert out.shape == (2, 16, 14, 14) and out.abs().sum() > 0
    assert_same(dc.ours_to_dit(ours, 32, 'x.pth'), ref)
    # a trained null embedding has no reference counterpart
    ours['null_embeddings.command'] = torch.ones(32)
    with pytest.raises(ConversionError, match='null_embeddings.command'):
        dc.ours_to_dit(ours, 32, 'x.pth')


def write_dc_runs(root):
    """ckpts/TINY_VAE (conf.yaml + best checkpoint) and ckpts/TINY_DIT (DiT-DC/2, EMA)."""
    vae_dir, dit_dir = root / 'ckpts' / 'TINY_VAE', root / 'ckpts' / 'TINY_DIT'
    vae_dir.mkdir(parents=True)
    dit_dir.mkdir()
    (vae_dir / 'conf.yaml').write_text(yaml.safe_dump(DC['vae_tiny_conf']))
    vae = seeded(DC['vae_tiny'], seed=3)
    torch.save(dict(epoch=7, optimizer_state_dict={}, scheduler_state_dict={}, best_miou=40.0,
                    global_step=70, model_state_dict=vae), vae_dir / '7_mIoU_40.00.ckpt')
    torch.save(dict(epoch=1, model_state_dict={k: v + 1 for k, v in vae.items()}),
               vae_dir / '2_mIoU_10.00.ckpt')  # a worse epoch: not picked
    dit_conf = dict(model=dict(model='DiT-DC/2', x_attn=False, hex_cond=False, layout_cond=False,
                               traj_cond=False, cmd_cond=False), name='TINY_DIT',
                    vae_name='TINY_VAE')
    (dit_dir / 'conf.yaml').write_text(yaml.safe_dump(dit_conf))
    ema = seeded(DC['dit_dc2_tiny_hex'], seed=4)
    torch.save(dict(epoch=0, optimizer_state_dict={}, current_step=10,
                    model_state_dict={k: torch.zeros_like(v) for k, v in ema.items()}, ema=ema),
               dit_dir / '0000010.ckpt')
    return vae, ema, vae_dir / '7_mIoU_40.00.ckpt', dit_dir / '0000010.ckpt'


def build_from_meta(path):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from occworld4d.registry import MODELS
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    cfg = Config.fromfile(osp.join(ROOT, ckpt['meta']['config']))
    cfg.merge_from_dict(dc._parse_options(ckpt['meta']['cfg_options']))
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = MODELS.build(cfg.model)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    return model.eval(), ckpt


def test_dc_tool_reads_conf_beside_checkpoint_and_round_trips(tmp_path, capsys):
    vae, ema, vae_src, dit_src = write_dc_runs(tmp_path)
    assert tool_main(DC_TOOL, vae_src, tmp_path / 'vae.pth') == 0
    printed = capsys.readouterr().out
    assert dc.VAE_CONFIG in printed and 'model.num_frames=8' in printed
    model, ckpt = build_from_meta(tmp_path / 'vae.pth')
    assert ckpt['meta']['dynamiccity_conf'] == DC['vae_tiny_conf']
    with torch.no_grad():
        planes = model.encode(torch.randint(0, 12, (1, 8, 16, 16, 8)))
    assert planes['tx'].shape == (1, 8, 2, 8)

    assert tool_main(DC_TOOL, dit_src, tmp_path / 'gen.pth') == 0
    printed = capsys.readouterr().out
    assert dc.DIT_CONFIG in printed and 'model.denoiser.hex_shape="(2,8,8,4)"' in printed
    model, ckpt = build_from_meta(tmp_path / 'gen.pth')
    assert model.denoiser.conditions == () and ckpt['meta']['weights'] == 'ema'
    assert ckpt['meta']['vae_checkpoint'] == '7_mIoU_40.00.ckpt'
    with torch.no_grad():
        out = model.denoiser(torch.randn(1, 8, 14, 14), torch.tensor([10]))
    assert out.shape == (1, 16, 14, 14)

    back = tmp_path / 'back' / 'DIT' / 'last.ckpt'
    assert tool_main(DC_TOOL, tmp_path / 'gen.pth', back, '--reverse', '--vae-out',
                     tmp_path / 'back' / 'VAE' / 'last.ckpt') == 0
    ref = torch.load(back, map_location='cpu', weights_only=True)
    assert_same(ref['ema'], ema)
    assert_same(ref['model_state_dict'], ema)
    assert ref['optimizer_state_dict']['param_groups'][0]['params'] == list(range(len(ema)))
    assert yaml.safe_load((back.parent / 'conf.yaml').read_text())['vae_name'] == 'TINY_VAE'
    ref_vae = torch.load(tmp_path / 'back' / 'VAE' / 'last.ckpt', weights_only=True)
    assert_same(ref_vae['model_state_dict'], vae)
    assert 'milestones' in ref_vae['scheduler_state_dict']


def _script(capfd, tool, *args):
    """What ``python TOOL ARGS`` runs (its ``__main__``: ``sys.exit(run_cli(main))``), in this
    process: the exit code and stderr. A subprocess paid ~8 s CPU of start-up for this; a
    traceback would be an exception escaping run_cli, which fails the test."""
    capfd.readouterr()
    code = run_cli(load_tool(tool).main, [str(a) for a in args])
    return code, capfd.readouterr().err


def test_dc_bad_inputs_give_one_clear_message(tmp_path, capfd):
    _, _, vae_src, dit_src = write_dc_runs(tmp_path)
    truncated = vae_src.parent / 'truncated.ckpt'
    truncated.write_bytes(vae_src.read_bytes()[:2000])
    code, err = _script(capfd, DC_TOOL, truncated, tmp_path / 'x.pth')
    assert code == 2 and 'truncated.ckpt' in err and 'truncated' in err
    assert 'Traceback' not in err
    lonely = tmp_path / 'lonely.ckpt'
    lonely.write_bytes(vae_src.read_bytes())
    with pytest.raises(ConversionError, match='no conf.yaml beside it'):
        dc.convert_to_occworld4d(str(lonely), str(tmp_path / 'x.pth'))
    # another model's weights under the VAE's conf: every unknown key listed, file named
    wrong = vae_src.parent / 'wrong.ckpt'
    torch.save(dict(model_state_dict=seeded(US['vae_tiny'])), wrong)
    with pytest.raises(ConversionError) as err:
        dc.convert_to_occworld4d(str(wrong), str(tmp_path / 'x.pth'))
    assert 'wrong.ckpt' in str(err.value) and 'class_embeds.weight' in str(err.value)
    assert not (tmp_path / 'x.pth').exists()


def test_dc_converted_generator_samples_in_tools_sample(tmp_path, capsys):
    """A converted DiT run (+ its VAE run) with the printed config and --cfg-options:
    tools/sample.py loads it strictly and samples (2 DDPM steps)."""
    import numpy as np
    _, _, _, dit_src = write_dc_runs(tmp_path)
    gen = tmp_path / 'gen.pth'
    assert tool_main(DC_TOOL, dit_src, gen) == 0
    capsys.readouterr()
    meta = torch.load(gen, map_location='cpu', weights_only=True)['meta']
    assert meta['config'] == dc.DIT_CONFIG and meta['cfg_options']
    out = tmp_path / 'samples'
    tool_main('tools/sample.py', dc.DIT_CONFIG, gen, '--task', 'uncond', '--steps', '2',
              '--no-render', '--no-progress', '--out', out, '--cfg-options',
              *meta['cfg_options'])
    with np.load(out / 'sample_0.npz') as f:
        assert f['semantics'].shape == (8, 16, 16, 8)


# ------------------------------------------------------------------------------ UniScene
def test_us_full_size_keys_match_the_reference_configs():
    ours = us.vae_to_ours(seeded(US['vae_full'], device='meta'), 'epoch_296.pth',
                          expected=model_shapes(us.VAE_CONFIG))
    assert ours['encoder.mid.attn_1.attn_w.qkv.weight'].shape == (768, 256)
    us.dit_to_ours(seeded(US['dit_full'], device='meta'), '0600000.pt',
                   expected=model_shapes(us.DIT_CONFIG, sub='denoiser'))


def tiny_us_vae(axial_mode='reference'):
    return UniSceneOccVAE(ch=8, resolution=16, attn_resolutions=(4, ), dec_hidden=8,
                          axial_mode=axial_mode).eval()


def test_us_vae_converts_loads_strictly_runs_and_inverts():
    ref = seeded(US['vae_tiny'], seed=5)
    model = tiny_us_vae()
    ours = us.vae_to_ours(ref, 'epoch_1.pth', expected=shapes_of(model))
    model.load_state_dict(ours, strict=True)
    q = ref['encoder.down.2.attn.0.block.1.attn_h.w_ks.weight']
    assert torch.equal(ours['encoder.down.2.attn.0.attn_h.qkv.weight'][32:64], q)
    voxels = torch.randint(0, 18, (1, 2, 16, 16, 16))
    with torch.no_grad():
        mu, _ = model.posterior(voxels)
        logits = model.decode(mu)
    assert mu.shape == (1, 4, 2, 4, 4) and logits.shape == (1, 18, 2, 16, 16, 16)
    other = tiny_us_vae('hw')
    other.load_state_dict(ours, strict=True)  # same keys, another function
    with torch.no_grad():
        assert not torch.allclose(other.posterior(voxels)[0], mu)
    assert_same(us.ours_to_vae(ours, 'x.pth'), ref)


def test_us_dit_converts_loads_strictly_runs_and_inverts():
    ref = seeded(US['dit_tiny'], seed=6)
    model = UniSceneOccDiT(input_size=50, in_channels=4, num_frames=3, depth=2, hidden_size=32,
                           num_heads=2, conditions=('layout', 'meta'), meta_dim=4).eval()
    ours = us.dit_to_ours(ref, '0000100.pt', expected=shapes_of(model))
    model.load_state_dict(ours, strict=True)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        out = model(torch.randn(1, 4, 3, 50, 50, generator=g), torch.tensor([5]),
                    layout=torch.randint(0, 13, (1, 3, 50, 50), generator=g),
                    meta=torch.randn(1, 4, generator=g))
    assert out.shape == (1, 8, 3, 50, 50) and out.abs().sum() > 0
    assert_same(us.ours_to_dit(ours, 'x.pth'), ref)


def test_us_tool_and_bad_inputs(tmp_path, capfd):
    ref = seeded(US['vae_tiny'], seed=8)
    src = tmp_path / 'epoch_3.pth'
    torch.save(dict(state_dict=ref, optimizer={}, scheduler={}, epoch=3), src)
    cfg = tmp_path / 'tiny_vae.py'
    cfg.write_text(f"_base_ = ['{osp.join(ROOT, us.VAE_CONFIG)}']\n"
                   "model = dict(ch=8, resolution=16, attn_resolutions=(4, ), dec_hidden=8)\n")
    assert tool_main(US_TOOL, src, tmp_path / 'vae.pth', '--config', cfg) == 0
    assert f'python tools/test.py {cfg}' in capfd.readouterr().out
    ckpt = torch.load(tmp_path / 'vae.pth', weights_only=True)
    model = tiny_us_vae()
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert tool_main(US_TOOL, tmp_path / 'vae.pth', tmp_path / 'back.pth', '--reverse') == 0
    assert_same(torch.load(tmp_path / 'back.pth', weights_only=True)['state_dict'], ref)
    # the OccDiT needs its VAE; a truncated file and a wrong model: one message each
    dit = tmp_path / '0000100.pt'
    torch.save(dict(model=seeded(US['dit_tiny']), ema=seeded(US['dit_tiny'])), dit)
    with pytest.raises(ConversionError, match='--vae'):
        us.convert_to_occworld4d(str(dit), str(tmp_path / 'g.pth'))
    (tmp_path / 'cut.pth').write_bytes(src.read_bytes()[:1500])
    code, err = _script(capfd, US_TOOL, tmp_path / 'cut.pth', tmp_path / 'g.pth')
    assert code == 2 and 'cut.pth' in err and 'Traceback' not in err
    wrong = tmp_path / 'wrong.pth'
    torch.save(dict(state_dict=seeded(DC['vae_tiny'])), wrong)
    with pytest.raises(ConversionError) as err:
        us.convert_to_occworld4d(str(wrong), str(tmp_path / 'g.pth'), config=str(cfg))
    assert 'wrong.pth' in str(err.value) and 'vae.fc_mu_logvar.0.weight' in str(err.value)


# ------------------------------------------------------------------------------ switches
def identity_attention():
    attn = Attention(2, num_heads=1, qkv_bias=False)
    with torch.no_grad():
        attn.qkv.weight.copy_(torch.cat([torch.eye(2)] * 3))  # q = k = v = x
        attn.proj.weight.copy_(torch.eye(2))
        attn.proj.bias.zero_()
    return attn


def test_reference_axial_attention_pinned_by_hand():
    """One row (H = 1), W = 2 positions x[w0] = (2, 0), x[w1] = (1, 1), C = 2, one head,
    q = k = v = x, identity output projection.

    Along the channel axis (the reference's attn_w): tokens c0 = (2, 1), c1 = (0, 1) (their
    W values); scores / sqrt(W = 2): [[5, 1], [1, 1]] / sqrt 2; softmax row 0 = sigmoid(4 /
    sqrt 2) = 0.944193, row 1 = (0.5, 0.5): c0 -> 0.944193 (2, 1) + 0.055807 (0, 1) =
    (1.888386, 1), c1 -> (1, 1). Along W (the reference's attn_h; ours in 'hw' mode too):
    tokens w0 = (2, 0), w1 = (1, 1); scores / sqrt(d = 2): [[4, 2], [2, 2]] / sqrt 2; row 0 =
    sigmoid(2 / sqrt 2) = 0.804429: w0 -> (1.804429, 0.195571), w1 -> (1.5, 0.5).
    """
    x = torch.tensor([[[[2.0, 0.0], [1.0, 1.0]]]])  # (N, H, W, C)
    out = channel_axis_attention(identity_attention(), x)
    expected = torch.tensor([[[[1.888386, 1.0], [1.0, 1.0]]]])  # (w, c) after channel attention
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-6)
    p = 1 / (1 + math.exp(-4 / math.sqrt(2)))
    assert abs(p - 0.944193) < 1e-6
    along_w = identity_attention()(x.view(1, 2, 2))
    torch.testing.assert_close(along_w, torch.tensor([[[1.804429, 0.195571], [1.5, 0.5]]]),
                               rtol=0, atol=2e-6)


def test_axial_modes_share_keys_and_reference_never_attends_along_h():
    torch.manual_seed(0)
    blocks = {m: AxialAttnBlock2d(8, axial_mode=m).eval() for m in ('hw', 'reference')}
    blocks['reference'].load_state_dict(blocks['hw'].state_dict(), strict=True)
    x = torch.randn(1, 8, 3, 4)
    with torch.no_grad():
        ref_out, hw_out = blocks['reference'](x), blocks['hw'](x)
    assert not torch.allclose(ref_out, hw_out, atol=1e-4)
    # Reference mode: after the (per-sample) GroupNorm, each row h only sees itself.
    blk = blocks['reference']
    with torch.no_grad():
        h = blk.norm(x).permute(0, 2, 3, 1)  # (1, H, W, C)
        rows = [blk.attn_h(h[:, i]) + channel_axis_attention(blk.attn_w, h[:, i:i + 1])[:, 0]
                for i in range(3)]
        torch.testing.assert_close(ref_out, x + torch.stack(rows, 1).permute(0, 3, 1, 2),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='axial_mode'):
        AxialAttnBlock2d(8, axial_mode='hwc')


def test_uniscene_dit_uses_exact_gelu_like_the_reference():
    exact = UniSceneOccDiT(input_size=4, num_frames=2, arch='UniScene-tiny')
    tanh = UniSceneOccDiT(input_size=4, num_frames=2, arch='UniScene-tiny', mlp_act='gelu_tanh')
    one = torch.tensor([1.0])
    # Phi(1) = 0.8413447 (exact); tanh approximation 0.8411920
    assert abs(exact.blocks[0].mlp.act(one).item() - 0.8413447) < 1e-6
    assert abs(tanh.blocks[0].mlp.act(one).item() - 0.8411920) < 1e-6
