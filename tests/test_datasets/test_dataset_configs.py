"""The dataset base configs build their datasets on format-exact fixtures, and their
``vocabulary`` / ``num_classes`` variables match what the datasets emit."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from occworld4d.datasets.writers import (build_nuscenes_infos, write_carlasc_sequence,
                                         write_nuscenes_infos, write_occ3d_nuscenes_frame,
                                         write_occ3d_waymo_frame)
from occworld4d.registry import DATASETS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', '_base_', 'datasets')


def _fixture(name, root, num=4):
    rng = np.random.default_rng(0)
    poses = np.tile(np.eye(4), (num, 1, 1))
    poses[:, 0, 3] = np.arange(num)
    if name == 'carlasc':
        for split in ('Train', 'Test'):
            write_carlasc_sequence(osp.join(root, 'Cartesian', split, 'Town01_Heavy', 'cartesian'),
                                   rng.integers(0, 23, (num, 128, 128, 8)),
                                   np.ones((num, 128, 128, 8)), poses, write_points=False)
        return {}
    grid = (200, 200, 16)
    if name == 'occ3d_waymo':
        for split in ('training', 'validation'):
            for t in range(num):
                write_occ3d_waymo_frame(osp.join(root, split, '000', f'{t:03d}_04.npz'),
                                        rng.integers(0, 16, grid), np.ones(grid), np.ones(grid),
                                        np.ones(grid), ego2global=poses[t])
        return {}
    infos = build_nuscenes_infos('scene-0001', poses, np.arange(num) * 500000)
    for info in infos:
        write_occ3d_nuscenes_frame(osp.join(root, 'gts', 'scene-0001', info['token'],
                                            'labels.npz'),
                                   rng.integers(0, 18, grid), np.ones(grid), np.ones(grid))
    for split in ('train', 'val'):
        write_nuscenes_infos(osp.join(root, f'nuscenes_infos_{split}_temporal_v3_scene.pkl'),
                             infos, {})
    return {}


@pytest.mark.parametrize('name', ['occ3d_nuscenes', 'carlasc', 'occ3d_waymo'])
def test_dataset_config_builds(tmp_path, name):
    cfg = Config.fromfile(osp.join(CFG, f'{name}.py'))
    assert cfg.train_dataloader.collate_fn == dict(type='default_collate')
    assert cfg.data_root.startswith('data/')
    _fixture(name, str(tmp_path))
    init_default_scope('occworld4d')
    for split in ('train', 'val'):
        ds_cfg = dict(cfg[f'{split}_dataloader'].dataset, data_root=str(tmp_path),
                      num_frames=2)
        ds = DATASETS.build(ds_cfg)
        assert len(ds) >= 1
        sample = ds[0]
        assert sample['data_samples'].metainfo['vocabulary'] == cfg.vocabulary
        assert int(sample['inputs']['voxels'].max()) < cfg.num_classes
        assert sample['inputs']['voxels'].shape[1:] == tuple(cfg.grid_size)


def test_pack_window_cache_tool_from_config(tmp_path):
    _fixture('carlasc', str(tmp_path / 'data'))
    path = osp.join(ROOT, 'tools', 'dataset_converters', 'pack_window_cache.py')
    spec = importlib.util.spec_from_file_location('pack_window_cache', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'cache')
    tool.main([osp.join(CFG, 'carlasc.py'), '--out', out, '--split', 'val', '--cfg-options',
               f'val_dataloader.dataset.data_root={tmp_path / "data"}'])
    assert osp.isfile(osp.join(out, 'index.json'))
    arr = np.load(osp.join(out, 'Test__Town01_Heavy.semantics.npy'))
    assert arr.shape == (4, 128, 128, 8)


def test_runner_dataloader_batches_follow_the_contract(tmp_path):
    import torch
    from mmengine.runner import Runner

    from occworld4d.models.data_preprocessors import OccDataPreprocessor
    cfg = Config.fromfile(osp.join(CFG, 'carlasc.py'))
    _fixture('carlasc', str(tmp_path))
    init_default_scope('occworld4d')
    loader_cfg = dict(cfg.train_dataloader.to_dict(), batch_size=2, num_workers=0,
                      persistent_workers=False)
    loader_cfg['dataset'] = dict(loader_cfg['dataset'], data_root=str(tmp_path), num_frames=3,
                                 pipeline=[dict(type='RandomFlip', prob=0.5),
                                           dict(type='MakeLayout'),
                                           dict(type='PackOccInputs')])
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batch = OccDataPreprocessor(num_classes=cfg.num_classes)(next(iter(loader)))
    inputs = batch['inputs']
    assert inputs['voxels'].shape == (2, 3, 128, 128, 8) and inputs['voxels'].dtype == torch.int64
    assert inputs['trajectory'].shape == (2, 3, 3) and inputs['command'].shape == (2, )
    assert inputs['layout'].shape == (2, 3, 32, 32)
    assert len(batch['data_samples']) == 2
