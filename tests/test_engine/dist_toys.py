"""A hook for the multi-process tests (test_cpu_distributed.py), imported by each torchrun
worker through the test config's ``custom_imports`` (PYTHONPATH = this folder).

``RankRecordHook`` writes, per rank, under the work dir:
- ``rank{R}_samples.jsonl``: one line per training iteration, {"epoch", "iter", "scenes"}
  (the ``scene`` metainfo of every sample of the rank's batch), flushed at once, so a killed
  run leaves what it trained on;
- ``rank{R}_pid``: the worker's process id (the kill tests read it);
- ``rank{R}_final.pth``: the rank's model state dict after training (not a checkpoint:
  mmengine saves on rank 0 only, this is how the ranks' weights are compared).
"""
import json
import os
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankRecordHook(Hook):
    priority = 'VERY_LOW'

    def before_run(self, runner):
        rank = get_rank()
        self._path = osp.join(runner.work_dir, f'rank{rank}_samples.jsonl')
        with open(osp.join(runner.work_dir, f'rank{rank}_pid'), 'w') as f:
            f.write(str(os.getpid()))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        scenes = [s.metainfo['scene'] for s in data_batch['data_samples']]
        with open(self._path, 'a') as f:
            f.write(json.dumps(dict(epoch=runner.epoch, iter=runner.iter, scenes=scenes)) + '\n')
            f.flush()

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()},
                   osp.join(runner.work_dir, f'rank{get_rank()}_final.pth'))
