"""A toy mmengine model / dataset / metric and a Runner factory for the engine tests.

The Runner gets the project's default hooks (``configs/_base_/default_runtime.py``: the
``SafeCheckpointHook`` and the ``NonFiniteGuardHook``), so the tests exercise what every
config trains with.
"""
import copy
import itertools
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import occworld4d  # noqa: F401  (compat fixes, registries)

RUNTIME = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', 'configs', '_base_',
                   'default_runtime.py')
_RUN_IDS = itertools.count()
DEFAULT_HOOKS = copy.deepcopy(Config.fromfile(RUNTIME).default_hooks)


class ToyModel(BaseModel):
    """Linear regression; ``nan_at`` = sample indices whose loss is NaN (a bad batch)."""

    def __init__(self, out_features=1, nan_at=()):
        super().__init__()
        self.linear = nn.Linear(4, out_features)
        self.nan_at = set(nan_at)

    def forward(self, inputs, data_samples=None, mode='tensor', index=None):
        out = self.linear(inputs)
        if mode == 'loss':
            loss = ((out - data_samples) ** 2).mean()
            if index is not None and self.nan_at & set(index.tolist()):
                loss = loss * float('nan')
            return dict(loss_mse=loss, loss_l1=(out - data_samples).abs().mean())
        if mode == 'predict':
            return [dict(err=float(((o - t) ** 2).mean())) for o, t in zip(out, data_samples)]
        return out


class ToyData(torch.utils.data.Dataset):
    def __init__(self, n=16):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.y[i], index=i)


class ToyMetric(BaseMetric):
    """``toy/score``: 1 / (1 + mse), greater is better."""

    def process(self, data_batch, data_samples):
        self.results.extend(s['err'] for s in data_samples)

    def compute_metrics(self, results):
        return {'toy/score': 1.0 / (1.0 + sum(results) / len(results))}


def make_runner(work_dir, max_epochs=2, model=None, checkpoint=None, nan_guard=None, lr=0.1,
                by_epoch=True, max_iters=None, val=False, cfg=None, optimizer='Adam', **kwargs):
    """A toy Runner with the default hooks of default_runtime.py (overrides merged in)."""
    hooks = copy.deepcopy(DEFAULT_HOOKS)
    hooks['logger'] = dict(type='LoggerHook', interval=100)
    hooks['checkpoint'].update(checkpoint or {})
    if not by_epoch:
        hooks['checkpoint'].setdefault('by_epoch', False)
    hooks['nan_guard'].update(nan_guard or {})
    train_cfg = (dict(by_epoch=True, max_epochs=max_epochs) if by_epoch
                 else dict(by_epoch=False, max_iters=max_iters))
    extra = {}
    if val:
        train_cfg['val_interval'] = 1
        extra = dict(val_dataloader=dict(dataset=ToyData(8), batch_size=4, num_workers=0,
                                         sampler=dict(type='DefaultSampler', shuffle=False),
                                         collate_fn=dict(type='default_collate')),
                     val_cfg=dict(), val_evaluator=[ToyMetric()])
    return Runner(
        model=model or ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type=optimizer, lr=lr)),
        param_scheduler=[dict(type='MultiStepLR', milestones=[1, 2], gamma=0.5,
                              by_epoch=by_epoch)],
        train_cfg=train_cfg, default_hooks=hooks, randomness=dict(seed=0),
        default_scope='occworld4d', cfg=Config(cfg or {}),
        # a name of its own: runners started in the same second would share mmengine's
        # MessageHub (keyed by the timestamp) and so its keep_ckpt_ids
        experiment_name=f'toy_{os.getpid()}_{next(_RUN_IDS)}', **extra, **kwargs)


def params_finite(path):
    from occworld4d.utils.compat import load_checkpoint_file
    state = load_checkpoint_file(str(path))['state_dict']
    return all(bool(torch.isfinite(v).all()) for v in state.values())
