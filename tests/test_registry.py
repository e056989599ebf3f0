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


def test_build_does_not_depend_on_the_current_default_scope():
    """A plain ``Runner(...)`` leaves mmengine's scope current for the rest of the process
    (the visualization hook tests do): occworld4d's registries still build their own names,
    nested builds included (the extractor builds its OccDataPreprocessor), a name that only
    mmengine knows still builds, and an unknown one still fails naming it."""
    import pytest
    import torch
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmengine'):
        assert DefaultScope.get_current_instance().scope_name == 'mmengine'
        model = reg.MODELS.build(dict(type='OccFeatureExtractor2D', num_classes=3, free_label=0,
                                      dataset_name='toy', feat_dim=4, base_channels=2,
                                      num_stages=1, layout_grid=1, local_parts=()))
        assert type(model.data_preprocessor).__name__ == 'OccDataPreprocessor'
        seq = reg.MODELS.build([dict(type='OccDataPreprocessor', num_classes=3)])
        assert type(seq[0]).__name__ == 'OccDataPreprocessor'
        assert isinstance(reg.MODELS.build(dict(type='BaseDataPreprocessor')), torch.nn.Module)
        sched = reg.PARAM_SCHEDULERS.build(
            dict(type='ConstantLR', factor=0.5, by_epoch=False),
            default_args=dict(optimizer=torch.optim.SGD(model.parameters(), lr=1.0)))
        assert type(sched).__name__ == 'ConstantLR'
        with pytest.raises(KeyError, match='NoSuchModel is not in the mmengine::model'):
            reg.MODELS.build(dict(type='NoSuchModel'))
        # the scope that was current is current again
        assert DefaultScope.get_current_instance().scope_name == 'mmengine'
