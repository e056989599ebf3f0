"""Feature-extractor configs parse, build, train through the Runner and feed GenerationMetric."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'evaluation', 'feature_extractor_*.py')))


def test_configs_exist():
    names = {osp.basename(c) for c in CONFIGS}
    assert {'feature_extractor_2d_1xb2-10e_synthetic-city-tiny.py',
            'feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_model(path):
    from mmengine.registry import init_default_scope
    from occworld4d.registry import MODELS
    cfg = Config.fromfile(path)  # no custom_imports: MODELS' locations import the extractors
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert model.dataset_name == cfg.model.dataset_name and len(model.version) == 12
    # the extractor's vocabulary matches the dataset's
    assert model.num_classes == cfg.num_classes and model.free_label == cfg.free_label
    assert cfg.train_dataloader.dataset.type == cfg.dataset_type


@pytest.mark.parametrize('kind', ['2d', '3d'])
def test_tiny_config_trains_and_checkpoint_feeds_metric(tmp_path, kind):
    from occworld4d.evaluation import GenerationMetric
    path = osp.join(ROOT, 'configs', 'evaluation',
                    f'feature_extractor_{kind}_1xb2-10e_synthetic-city-tiny.py')
    cfg = Config.fromfile(path)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4)
    cfg.train_dataloader.dataset.num_scenes = 4
    cfg.train_dataloader.dataset.num_frames = 3
    cfg.model.update(feat_dim=16, base_channels=4)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=4, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = osp.join(str(tmp_path), 'iter_4.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    version = runner.model.version
    assert state['_extra_state']['version'] == version
    metric = GenerationMetric(extractor=cfg.model.to_dict(), checkpoint=ckpt,
                              statistics=('fid', 'tc'))
    assert metric.prefix == f'gen{kind}@{version}'
    for a, b in zip(metric.extractor.state_dict().values(), runner.model.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a.cpu(), b.cpu())
