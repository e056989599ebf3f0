"""``SignalCheckpointHook``: SIGTERM / SIGINT during training save a checkpoint and stop.

Cluster schedulers send SIGTERM (SLURM at the time limit or on preemption, Kubernetes on
eviction) and users press Ctrl-C (SIGINT). Without this hook the process dies where it is and
everything since the last periodic checkpoint is lost. With it:

- the signal only sets a flag (nothing is interrupted in the middle of an optimizer step or
  a save); the current iteration finishes;
- then the hook writes ``iter_{N}.pth`` (N = iterations done; model, optimizer, schedulers,
  message hub and -- with :class:`RNGStateHook` -- the RNG states, atomically through the
  project's save, ``last_checkpoint`` updated) and raises :class:`TrainingInterrupted`, which
  ``tools/train.py`` reports in one line and exits with ``128 + signal`` (143 for SIGTERM, 130
  for SIGINT), the shell convention for "stopped by a signal";
- ``tools/train.py CONFIG --resume`` continues from that checkpoint (mid-epoch too:
  :class:`RNGStateHook` skips the batches of the epoch already trained), bit for bit;
- a second SIGINT while the first is being handled aborts at once (the default handler);
- with several processes the flag is all-reduced every iteration, so every rank stops at the
  same iteration (the scheduler signals all of them).

The handlers are installed in ``before_train`` (main thread only) and the previous ones put
back in ``after_train`` / on the way out.
"""
import os.path as osp
import signal
import threading
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook

from occworld4d.registry import HOOKS
from occworld4d.utils.io import write_text_atomic


class TrainingInterrupted(RuntimeError):
    """Training was stopped by a signal after saving ``checkpoint``."""

    def __init__(self, message: str, signum: int, checkpoint: Optional[str]):
        super().__init__(message)
        self.signum, self.checkpoint = signum, checkpoint
        self.exit_code = 128 + int(signum)


@HOOKS.register_module()
class SignalCheckpointHook(Hook):
    """Save a checkpoint and stop cleanly on SIGTERM / SIGINT (see module doc).

    Args:
        signals (tuple[str]): signal names to handle. Default ('SIGTERM', 'SIGINT').
    """

    priority = 'LOWEST'  # after the optimizer step and the periodic checkpoint

    def __init__(self, signals=('SIGTERM', 'SIGINT')):
        self.signals = tuple(getattr(signal, s) for s in signals)
        self._received: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def _handler(self, signum, frame):
        if self._received is not None and signum == signal.SIGINT:
            self._uninstall()
            raise KeyboardInterrupt  # second Ctrl-C: abort now
        self._received = signum

    def _install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handler)

    def _uninstall(self):
        for s, old in self._previous.items():
            signal.signal(s, old)
        self._previous = {}

    def before_train(self, runner) -> None:
        self._received = None
        self._install()

    def after_train(self, runner) -> None:
        self._uninstall()

    def _signalled(self) -> Optional[int]:
        if get_world_size() == 1:
            return self._received
        flag = torch.tensor([self._received or 0], dtype=torch.int64)
        all_reduce(flag, op='max')
        return int(flag.item()) or None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        signum = self._signalled()
        if signum is None:
            return
        name = signal.Signals(signum).name
        try:
            path = self._save(runner)
        finally:
            self._uninstall()
        msg = (f'training interrupted by {name} after iteration {runner.iter + 1} (epoch '
               f'{runner.epoch + 1}); saved {path}; continue with: tools/train.py CONFIG '
               f'--work-dir {runner.work_dir} --resume')
        runner.logger.warning(msg)
        raise TrainingInterrupted(msg, signum, path)

    def _save(self, runner) -> str:
        ckpt_hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        out_dir = getattr(ckpt_hook, 'out_dir', None) or runner.work_dir
        if ckpt_hook is not None and hasattr(ckpt_hook, '_check_finite_or_raise'):
            ckpt_hook._check_finite_or_raise(runner)  # never a NaN checkpoint
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(str(out_dir), filename, save_optimizer=True,
                               save_param_scheduler=True, by_epoch=False)
        path = osp.join(str(out_dir), filename)
        if is_main_process():
            write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), path)
        if ckpt_hook is not None:
            ckpt_hook.last_ckpt = path
            runner.message_hub.update_info('last_ckpt', path)
        return path
