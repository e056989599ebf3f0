"""Every registry is a child of mmengine's root and every location imports."""
import importlib

import mmengine.registry as mm
from mmengine.registry import Registry

import occworld4d.registry as reg


def _registries():
    return {name: obj for name, obj in vars(reg).items()
            if isinstance(obj, Registry) and not name.startswith('MMENGINE_')}


def test_every_registry_has_parent_and_importable_locations():
    regs = _registries()
    assert {'MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'EVALUATOR', 'HOOKS', 'VISUALIZERS',
            'VISBACKENDS', 'INFERENCERS', 'DIFFUSION'} <= set(regs)
    for name, registry in regs.items():
        assert registry.scope == 'occworld4d', name
        assert registry.parent is not None, f'{name} has no parent registry'
        root = getattr(mm, name, None)
        if root is not None:
            assert registry.parent is root, f'{name} is not a child of mmengine.{name}'
        assert registry._locations, f'{name} has no locations'
        for loc in registry._locations:
            importlib.import_module(loc)


def test_build_from_name_without_custom_imports():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = mm.MODELS.build(dict(type='OccDataPreprocessor', num_classes=3))
    assert type(model).__name__ == 'OccDataPreprocessor'
