"""A converted UniScene VAE + OccDiT through tools/test.py and tools/sample.py (issue 14).

A seeded state dict in the reference layout (Arlo0o/UniScene @ e98413d: the VAE's
``{state_dict, optimizer, scheduler, epoch}``, the OccDiT's ``{model, ema}``) of the tiny
synthetic-city sizes, with the reference behaviour switched on (``axial_mode='reference'``,
``kl_quirk``), is converted by ``tools/model_converters/uniscene_to_occworld4d.py`` and run,
strictly loaded, by ``tools/test.py`` (the 4 tiny val windows, OccupancyMetric) and
``tools/sample.py`` (a layout-conditioned scene); every output is finite and in range. The
reference layout's key names are checked against the fixture that instantiating the
reference code wrote (tests/data/model_converters/uniscene_reference_shapes.json)."""
import json
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from helpers import ROOT, tool_main

from occworld4d.converters import uniscene as us
from occworld4d.registry import MODELS

US_TOOL = 'tools/model_converters/uniscene_to_occworld4d.py'
TINY = osp.join(ROOT, 'configs/uniscene/uniscene_dit_tiny_synthetic-city.py')
FIXTURE = osp.join(ROOT, 'tests/data/model_converters/uniscene_reference_shapes.json')


def write_config(tmp_path):
    """The tiny synthetic-city OccDiT with the reference VAE behaviour; scored by
    OccupancyMetric only (the GenerationMetric needs a trained feature extractor)."""
    cfg = tmp_path / 'uniscene_dit_reference_tiny.py'
    cfg.write_text(
        f"_base_ = ['{TINY}']\n"
        "model = dict(tokenizer=dict(axial_mode='reference', kl_quirk=True),\n"
        "             sample_cfg=dict(sampler='ddim', num_steps=2))\n"
        "test_evaluator = dict(_delete_=True, type='OccupancyMetric', "
        "convention='dynamiccity', vocabulary='dynamiccity_carlasc')\n")
    return cfg


def reference_files(tmp_path, cfg):
    """Seeded reference-layout VAE and OccDiT files of the model ``cfg`` builds."""
    config = Config.fromfile(str(cfg))
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = MODELS.build(config.model)
    ours = model.state_dict()
    vae_ref = us.ours_to_vae(ours, 'x', prefix='tokenizer.')
    dit_ref = us.ours_to_dit(ours, 'x', prefix='denoiser.')
    g = torch.Generator().manual_seed(11)
    vae = {k: 0.2 * torch.randn(v.shape, generator=g) for k, v in vae_ref.items()}
    ema = {k: 0.05 * torch.randn(v.shape, generator=g) for k, v in dit_ref.items()}
    vae_src, dit_src = tmp_path / 'epoch_296.pth', tmp_path / '0000100.pt'
    torch.save(dict(state_dict=vae, optimizer={}, scheduler={}, epoch=296), vae_src)
    torch.save(dict(model={k: torch.full_like(v, 7.0) for k, v in ema.items()}, ema=ema),
               dit_src)
    return vae, ema, vae_src, dit_src


def normalised(keys):
    return {re.sub(r'\.\d+(?=\.)', '.N', k) for k in keys}


def test_converted_uniscene_runs_in_tools_test_and_sample(tmp_path, capsys):
    cfg = write_config(tmp_path)
    vae, ema, vae_src, dit_src = reference_files(tmp_path, cfg)
    # the layout is the reference's: every key pattern is one the reference code builds
    with open(FIXTURE) as f:
        fixture = json.load(f)
    assert normalised(vae) <= normalised(fixture['vae_tiny']), \
        sorted(normalised(vae) - normalised(fixture['vae_tiny']))[:5]
    assert normalised(ema) <= normalised(fixture['dit_tiny']), \
        sorted(normalised(ema) - normalised(fixture['dit_tiny']))[:5]

    gen = tmp_path / 'uniscene_dit_reference.pth'
    assert tool_main(US_TOOL, dit_src, gen, '--vae', vae_src, '--config', cfg) == 0
    assert f'python tools/test.py {cfg}' in capsys.readouterr().out
    state = torch.load(gen, map_location='cpu', weights_only=True)['state_dict']
    assert torch.equal(state['denoiser.final_layer.linear.weight'],
                       ema['final_layer.linear.weight'])  # the EMA weights, as sampled

    # tools/test.py: strict load, one sample per val window, metrics finite
    out = tmp_path / 'metrics.json'
    returned = tool_main('tools/test.py', cfg, gen, '--work-dir', tmp_path / 'test',
                         '--out', out)
    metrics = json.loads(out.read_text())
    assert returned['dynamiccity/mIoU'] == metrics['dynamiccity/mIoU']
    # the seeded reference weights and sampler: the same numbers with 1 and 2 threads
    assert metrics['dynamiccity/mIoU'] == pytest.approx(0.01826, abs=1e-4), metrics
    assert metrics['dynamiccity/IoU'] == pytest.approx(0.31618, abs=1e-4), metrics

    # tools/sample.py: a scene from the layout of a synthetic-city window
    from occworld4d.datasets import SyntheticCityDataset
    scene = SyntheticCityDataset(num_scenes=1, num_frames=8, grid_size=(32, 32, 8), seed=3)
    npz = tmp_path / 'scene.npz'
    np.savez(npz, semantics=scene[0]['inputs']['voxels'].numpy())
    tool_main('tools/sample.py', cfg, gen, '--task', 'layout', '--input', npz, '--steps', '2',
              '--seed', '0', '--no-render', '--no-progress', '--out', tmp_path / 'samples')
    with np.load(tmp_path / 'samples' / 'sample_0.npz') as f:
        sem = f['semantics']
    assert sem.shape == (8, 32, 32, 8) and 0 <= sem.min() and sem.max() < 12

    # strict: a checkpoint missing one key stops both tools, naming the key
    del state['denoiser.final_layer.linear.weight']
    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict=state, meta={}), bad)
    for tool, extra in (('tools/test.py', ['--work-dir', tmp_path / 'bad']),
                        ('tools/sample.py', ['--task', 'layout', '--input', npz, '--steps', '1',
                                             '--no-render', '--out', tmp_path / 'bad_s'])):
        capsys.readouterr()
        with pytest.raises((SystemExit, RuntimeError, KeyError, ValueError)) as err:
            tool_main(tool, cfg, bad, *extra)
        text = str(err.value) + capsys.readouterr().err
        assert 'final_layer.linear.weight' in text, (tool, text[-500:])
