"""The one DiT preset table (issue 18, item 2): its sizes, its lookup rule (``dit_size``),
every preset built by each of the three DiT denoisers, and every config's denoiser building
the same model as before the table was merged (parameter names, shapes and counts).

Models are built under ``torch.device('meta')``: shapes without memory or initialisation.
"""
import glob
import hashlib
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import occworld4d  # noqa: F401
from occworld4d.models.denoisers import (DIT_PRESETS, DiTSize, OccSoraDiT, RolloutDiT,
                                         UniSceneOccDiT, dit_size)
from occworld4d.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# arch -> (depth, hidden size, heads, patch): the table as written in dit.py
TABLE = {
    'DiT-DC/2': (16, 384, 8, 2),
    'DiT-DC/1': (18, 768, 12, 2),
    'DiT-S': (12, 384, 6, 2),
    'DiT-B': (12, 768, 12, 2),
    'DiT-L': (24, 1024, 16, 2),
    'DiT-XL': (28, 1152, 16, 2),
    'DiT-OccSora': (28, 256, 16, 1),
    'UniScene': (12, 512, 16, 2),
    'DiT-tiny': (2, 32, 2, 2),
    'UniScene-tiny': (2, 32, 2, 2),
}

# config (relative to configs/) -> (denoiser class, parameter count, state_dict entries,
# sha256[:16] of the [(name, shape)] list), recorded with the three per-denoiser tables
# (commit 9676205) before they were merged into DIT_PRESETS.
CONFIG_DENOISERS = {
    'dynamiccity/dynamiccity_dit_8xb16-1200e_carlasc.py':
        ('RolloutDiT', 44097920, 186, 'bbeb064ca6cc39ed'),
    'dynamiccity/dynamiccity_dit_8xb16-1200e_occ3d-nuscenes.py':
        ('RolloutDiT', 44835200, 186, '2761a6799bc3248b'),
    'dynamiccity/dynamiccity_dit_8xb16-1200e_occ3d-waymo.py':
        ('RolloutDiT', 44835200, 186, '2761a6799bc3248b'),
    'dynamiccity/dynamiccity_dit_cpu-30min_synthetic-city.py':
        ('RolloutDiT', 4224896, 73, '9e678d732715f4ba'),
    'dynamiccity/dynamiccity_dit_demo_synthetic-city.py':
        ('RolloutDiT', 1313664, 53, '2c401d9b8c92700b'),
    'dynamiccity/dynamiccity_dit_reference_carlasc.py':
        ('RolloutDiT', 43730432, 171, '7a869d19479342d8'),
    'dynamiccity/dynamiccity_dit_tiny_synthetic-city-latents.py':
        ('RolloutDiT', 62272, 46, '52960829a0274fab'),
    'dynamiccity/dynamiccity_dit_tiny_synthetic-city.py':
        ('RolloutDiT', 62272, 46, '52960829a0274fab'),
    'occsora/occsora_dit_8xb2-1200k_carlasc.py':
        ('OccSoraDiT', 36441344, 299, '4fde5445766cc9df'),
    'occsora/occsora_dit_8xb2-1200k_occ3d-nuscenes.py':
        ('OccSoraDiT', 36819200, 299, '9d5e7fa81f27e512'),
    'occsora/occsora_dit_8xb2-1200k_occ3d-waymo.py':
        ('OccSoraDiT', 36819200, 299, '9d5e7fa81f27e512'),
    'occsora/occsora_dit_reference_occ3d-nuscenes.py':
        ('OccSoraDiT', 36819200, 299, '9d5e7fa81f27e512'),
    'occsora/occsora_dit_tiny_synthetic-city.py':
        ('OccSoraDiT', 122816, 39, '1ce6f6c63cc709a1'),
    'uniscene/uniscene_dit_8xb4-1200e_occ3d-nuscenes.py':
        ('UniSceneOccDiT', 57984544, 132, '7911c902934d2da4'),
    'uniscene/uniscene_dit_8xb4-1200e_synthetic-city-occ3d.py':
        ('UniSceneOccDiT', 57984544, 132, '7911c902934d2da4'),
    # one-hot layout since d397924 (1,285,792 / 02cddcf1c26a0eaa with the scalar layout,
    # also before the merge)
    'uniscene/uniscene_dit_cpu-30min_synthetic-city.py':
        ('UniSceneOccDiT', 1291936, 52, '95cba66dfe217726'),
    'uniscene/uniscene_dit_reference_occ3d-nuscenes.py':
        ('UniSceneOccDiT', 58183200, 138, '1477e758fc95ff98'),
    'uniscene/uniscene_dit_tiny_synthetic-city.py':
        ('UniSceneOccDiT', 53248, 32, 'cd2b2e9695d866d6'),
}


def _configs_with_denoiser():
    found = []
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)):
        if '_base_' in path:
            continue
        model = Config.fromfile(path).get('model')
        if model and model.get('denoiser'):
            found.append(osp.relpath(path, osp.join(ROOT, 'configs')))
    return found


def _fingerprint(module):
    names = [(n, tuple(t.shape)) for n, t in module.state_dict().items()]
    return (type(module).__name__, sum(p.numel() for p in module.parameters()), len(names),
            hashlib.sha256(repr(names).encode()).hexdigest()[:16])


def test_table_is_the_one_table():
    assert {k: tuple(v) for k, v in DIT_PRESETS.items()} == TABLE
    assert all(isinstance(v, DiTSize) for v in DIT_PRESETS.values())
    assert DIT_PRESETS['DiT-DC/2'].hidden_size == 384  # named fields (converters use [1])


def test_lookup_rule_overrides_and_errors():
    assert dit_size('X', 'DiT-S') == DiTSize(12, 384, 6, 2)
    assert dit_size('X', 'DiT-S', depth=6, hidden_size=192) == DiTSize(6, 192, 6, 2)
    assert dit_size('X', 'UniScene-tiny', num_heads=4, patch_size=1) == DiTSize(2, 32, 4, 1)
    with pytest.raises(KeyError, match=r"X: unknown arch 'DiT-XXL'; presets: \['DiT-B'"):
        dit_size('X', 'DiT-XXL')
    with pytest.raises(ValueError, match=r"X: sizes must be positive ints, found \{'depth': 0\}"):
        dit_size('X', 'DiT-S', depth=0)
    with pytest.raises(ValueError, match='positive ints'):
        dit_size('X', 'DiT-S', patch_size=2.0)
    with pytest.raises(ValueError, match='hidden_size 100 is not a multiple of num_heads 6'):
        dit_size('X', 'DiT-S', hidden_size=100)
    # every denoiser uses the same rule and names itself
    for cls, kw in ((RolloutDiT, dict(hex_shape=(2, 4, 4, 2))),
                    (OccSoraDiT, dict(latent_shape=(4, 2, 2, 2))),
                    (UniSceneOccDiT, dict(input_size=4))):
        with pytest.raises(KeyError, match=f'{cls.__name__}: unknown arch'):
            cls(arch='nope', **kw)


@pytest.mark.parametrize('arch', sorted(TABLE))
def test_every_preset_builds_in_every_denoiser(arch):
    depth, width, heads, patch = TABLE[arch]
    with torch.device('meta'):
        rollout = RolloutDiT((2, 4, 4, 2), in_channels=3, arch=arch, num_frames=4)  # S = 8
        occsora = OccSoraDiT(latent_shape=(4, 2, 2, 2), arch=arch, num_frames=4)
        uniscene = UniSceneOccDiT(input_size=4, num_frames=2, arch=arch)
    for model, p in ((rollout, patch), (occsora, 1), (uniscene, patch)):
        name = type(model).__name__
        assert len(model.blocks) == depth, name
        assert model.t_embedder.mlp[2].out_features == width, name
        assert all(b.attn.num_heads == heads for b in model.blocks), name
        assert model.blocks[0].mlp.fc1.out_features == 4 * width, name
        # the final layer maps a token to p * p * C_out values
        c_out = model.out_channels
        assert model.final_layer.linear.out_features == p * p * c_out, name
    assert rollout.patch_size == uniscene.patch_size == patch


CONFIGS = _configs_with_denoiser()


def test_pinned_configs_exist():
    missing = sorted(set(CONFIG_DENOISERS) - set(CONFIGS))
    assert not missing, f'configs pinned here but gone (or without a denoiser): {missing}'


@pytest.mark.parametrize('config', CONFIGS)
def test_config_denoiser_builds_unchanged(config):
    """Every config's denoiser builds; the ones recorded before the merge are unchanged."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    with DefaultScope.overwrite_default_scope('occworld4d'), torch.device('meta'):
        denoiser = MODELS.build(cfg.model.denoiser.copy())
    kind, count, entries, digest = _fingerprint(denoiser)
    assert count > 0 and entries > 0
    if config in CONFIG_DENOISERS:  # configs added later are only built
        assert (kind, count, entries, digest) == CONFIG_DENOISERS[config]
