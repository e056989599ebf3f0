"""Every weight loader accepts a ``.safetensors`` file (issue 14, item 3), beyond
``tools/test.py`` (tests/test_tools/test_publish_model.py): a stage-2 model's
``tokenizer_ckpt`` and the generator loader of ``tools/sample.py`` / the inferencer."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import occworld4d  # noqa: F401
from occworld4d.apis.inferencer import load_generator, load_generator_checkpoint
from occworld4d.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DIT_TINY = osp.join(ROOT, 'configs', 'dynamiccity', 'dynamiccity_dit_tiny_synthetic-city.py')


def _build(cfg):
    with DefaultScope.overwrite_default_scope('occworld4d'):
        return MODELS.build(cfg)


def _perturbed(module, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: (v + torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
            .contiguous() for k, v in module.state_dict().items()}


def test_tokenizer_ckpt_and_generator_load_safetensors(tmp_path):
    from safetensors.torch import save_file
    cfg = Config.fromfile(DIT_TINY).model
    tok_state = _perturbed(_build(cfg.tokenizer), 0)
    tok_file = str(tmp_path / 'vae.safetensors')
    save_file(tok_state, tok_file)
    cfg.tokenizer_ckpt = tok_file
    model = _build(cfg)
    model.init_weights()  # loads model.tokenizer_ckpt strictly
    got = model.tokenizer.state_dict()
    assert sorted(got) == sorted(tok_state)
    assert all(torch.equal(got[k], v) for k, v in tok_state.items())

    gen_state = _perturbed(model, 1)
    gen_file = str(tmp_path / 'generator.safetensors')
    save_file(gen_state, gen_file)
    cfg.tokenizer_ckpt = None
    fresh = _build(cfg)
    load_generator_checkpoint(fresh, gen_file)  # what tools/sample.py and the inferencer use
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in gen_state.items())
    loaded = load_generator(DIT_TINY, gen_file)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in gen_state.items())
