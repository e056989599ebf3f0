"""DataSkipReportHook: the skipped-window summary of skip_corrupt datasets after every train
epoch, validation and test, through the default runtime's hooks; wrappers are unwrapped."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import ConcatDataset, RepeatDataset
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from occworld4d.datasets import Occ3DNuScenesDataset
from occworld4d.datasets.writers import (build_nuscenes_infos, write_nuscenes_infos,
                                         write_occ3d_nuscenes_frame)
from occworld4d.engine.hooks import DataSkipReportHook
from occworld4d.engine.hooks.data_skip_hook import skip_reporting_datasets

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GRID = (200, 200, 16)


def occ3d_tree(root, num=4, corrupt=(1, )):
    """An Occ3D-nuScenes tree of ``num`` one-scene frames; frames in ``corrupt`` are garbage."""
    poses = np.tile(np.eye(4), (num, 1, 1))
    poses[:, 0, 3] = np.arange(num)
    infos = build_nuscenes_infos('scene-0001', poses, np.arange(num) * 500000)
    for i, info in enumerate(infos):
        path = osp.join(root, 'gts', 'scene-0001', info['token'], 'labels.npz')
        write_occ3d_nuscenes_frame(path, np.full(GRID, 17), np.ones(GRID), np.ones(GRID))
        if i in corrupt:
            with open(path, 'wb') as f:
                f.write(b'not an npz')
    ann = osp.join(root, 'infos.pkl')
    write_nuscenes_infos(ann, infos, {})
    return ann


class ToyOccModel(BaseModel):
    """Fits one scalar to the mean voxel id (enough for the Runner to run the loops)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        mean = inputs['voxels'].float().mean()
        if mode == 'loss':
            return dict(loss_toy=(self.w - mean).square().sum())
        return data_samples


class CountMetric(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        self.results.extend([1] * len(data_samples))

    def compute_metrics(self, results):
        return dict(n=len(results))


def loader(ann, root, test_mode):
    ds = dict(type='Occ3DNuScenesDataset', data_root=root, ann_file=ann, num_frames=1,
              skip_corrupt=True, test_mode=test_mode)
    return dict(dataset=ds, batch_size=1, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='default_collate'))


def test_default_runtime_reports_skips_after_train_val_and_test(tmp_path):
    root = str(tmp_path / 'data')
    ann = occ3d_tree(root)  # window 1 of 4 is corrupt: one skip per pass over the data
    runtime = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'default_runtime.py'))
    hooks = runtime.default_hooks.to_dict()
    assert hooks['data_skip'] == dict(type='DataSkipReportHook')
    hooks['logger']['interval'] = 100
    runner = Runner(
        model=ToyOccModel(), work_dir=str(tmp_path / 'work'), default_hooks=hooks,
        train_dataloader=loader(ann, root, False), val_dataloader=loader(ann, root, True),
        test_dataloader=loader(ann, root, True),
        val_evaluator=Evaluator([CountMetric()]), test_evaluator=Evaluator([CountMetric()]),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1), val_cfg=dict(),
        test_cfg=dict(), default_scope='occworld4d', randomness=dict(seed=0),
        experiment_name=f'data_skip_{tmp_path.name}')  # own logger (names are per second)
    hook = next(h for h in runner.hooks if isinstance(h, DataSkipReportHook))
    runner.train()
    assert hook.reports == dict(train=1, val=1)  # the last epoch's / validation's new skips
    runner.test()
    assert hook.reports['test'] == 1

    log = open(glob.glob(str(tmp_path / 'work' / '*' / '*.log'))[0]).read()
    for line in ('train dataset Occ3DNuScenesDataset: 1 corrupt window(s) skipped in epoch 1, '
                 '1 in total',
                 'train dataset Occ3DNuScenesDataset: 1 corrupt window(s) skipped in epoch 2, '
                 '2 in total',
                 'val dataset Occ3DNuScenesDataset: 1 corrupt window(s) skipped in this '
                 'validation, 2 in total',
                 'test dataset Occ3DNuScenesDataset: 1 corrupt window(s) skipped in the test, '
                 '1 in total'):
        assert 'DataSkipReportHook: ' + line in log, line
    # report_skipped's own summary: the total and the distinct error, naming the file
    assert 'Occ3DNuScenesDataset: 2 corrupt window(s) skipped, 1 distinct error(s):' in log
    assert '2 x ' in log and 'labels.npz: not a readable npz archive' in log


def test_iteration_based_training_reports_every_interval(tmp_path):
    root = str(tmp_path / 'data')
    ann = occ3d_tree(root, num=4, corrupt=(0, 2))
    hook = DataSkipReportHook(train_interval=2)
    runner = Runner(
        model=ToyOccModel(), work_dir=str(tmp_path / 'work'),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=100), checkpoint=None),
        custom_hooks=[hook], train_dataloader=loader(ann, root, False),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=4), default_scope='occworld4d',
        randomness=dict(seed=0), experiment_name=f'data_skip_{tmp_path.name}')
    seen = []
    hook_report = hook.report

    def spy(runner, phase, when):
        seen.append((phase, when, hook_report(runner, phase, when)))
        return seen[-1][2]

    hook.report = spy
    runner.train()
    # 4 windows, windows 0 and 2 corrupt: the batches of iterations 1..4 skip 1, 0, 1, 0
    assert seen == [('train', 'in the last 2 iterations', 1),
                    ('train', 'in the last 2 iterations', 1),
                    ('train', 'since the previous report', 0)]


def test_wrappers_are_unwrapped_and_non_skipping_datasets_ignored(tmp_path):
    root = str(tmp_path / 'data')
    ann = occ3d_tree(root)
    skipping = Occ3DNuScenesDataset(root, ann, num_frames=1, skip_corrupt=True)
    other = Occ3DNuScenesDataset(root, ann, num_frames=1, skip_corrupt=True)
    raising = Occ3DNuScenesDataset(root, ann, num_frames=1)  # raises on a corrupt window
    wrapped = ConcatDataset([skipping, other, raising, skipping])
    assert list(skip_reporting_datasets(wrapped)) == [skipping, other]  # each once, in order
    nested = torch.utils.data.ConcatDataset([torch.utils.data.Subset(other, [0]),
                                             RepeatDataset(skipping, 2), wrapped])
    assert list(skip_reporting_datasets(nested)) == [other, skipping]
    assert list(skip_reporting_datasets(None)) == []
    wrapped[1]  # window 1 of `skipping` -> skipped, window 2 returned
    assert skipping.num_skipped == 1 and other.num_skipped == 0


@pytest.mark.parametrize('bad', [0, -3, 2.5])
def test_bad_interval(bad):
    with pytest.raises(ValueError, match='train_interval must be a positive number'):
        DataSkipReportHook(train_interval=bad)
