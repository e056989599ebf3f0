"""``RNGStateHook``: save and restore every random-number state, per rank, so that a resumed
run continues bit for bit like the uninterrupted one (on CPU; docs/reliability.md).

mmengine 0.10.7 saves only the seed: a run resumed from a checkpoint re-seeds the global RNGs,
so dead-code restarts, diffusion timesteps / noise, KL sampling and random augmentations draw
other numbers than the uninterrupted run did from there on. This hook

- adds ``checkpoint['rng_state']`` in ``before_save_checkpoint``: for every rank, the torch
  CPU generator (a uint8 tensor), the CUDA generators when CUDA is initialised, numpy's global
  MT19937 (``keys`` as an int64 tensor, ``pos``, ``has_gauss``, ``cached_gaussian``) and
  python's ``random`` (its 625 words as an int64 tensor, ``gauss_next``); and the train
  sampler's ``seed`` / ``epoch``. Only tensors, ints, floats, strings, lists, dicts and None:
  loadable with ``torch.load(weights_only=True)`` without any allow-list entry;
- on resume (not on a plain ``load_from``) sets the sampler's seed / epoch back at once and
  restores the RNGs exactly where the uninterrupted run drew its next number: at the start of
  the next training epoch, or -- for ``IterBasedTrainLoop``, which replays the data of the
  finished iterations to advance the loader -- right after that replay, before the first new
  batch is fetched (the replay's own draws do not count);
- resumes an ``EpochBasedTrainLoop`` from a mid-epoch checkpoint (``SignalCheckpointHook``,
  ``by_epoch=False`` checkpoints) inside that epoch: mmengine would train the whole epoch
  again; here its trained batches are skipped (fetched and dropped, like mmengine's own
  replay for iteration-based loops) and the RNGs restored before the first untrained one;
- runs validation inside a fork of the RNG states (``before_val_epoch`` saves,
  ``after_val_epoch`` restores), so the training stream does not depend on whether, or how
  often, validation ran -- a resumed run does not repeat the validation before its checkpoint.
  A checkpoint written during validation (mmengine re-saves the epoch checkpoint when
  ``save_best`` improves) stores that pre-validation fork.

Limits: dataloader workers (``num_workers > 0``) keep their own RNGs, seeded by mmengine's
``worker_init_fn`` when their iterator starts; a resume at an epoch boundary is identical,
mid-epoch (iteration-based with workers) it is not. A checkpoint without ``rng_state``
(written before this hook) resumes as before, with a log line.
"""
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from occworld4d.registry import HOOKS


def capture_rng_state() -> Dict[str, Any]:
    """This process's torch / CUDA / numpy / python RNG states as weights_only-safe types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss_next = random.getstate()
    state = dict(
        torch=torch.get_rng_state().clone(),
        numpy=dict(kind=str(kind), keys=torch.from_numpy(np.asarray(keys, np.int64).copy()),
                   pos=int(pos), has_gauss=int(has_gauss), cached_gaussian=float(cached)),
        python=dict(version=int(version), words=torch.tensor(words, dtype=torch.int64),
                    gauss_next=None if gauss_next is None else float(gauss_next)),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = [s.clone() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state['torch'].clone())
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), int(n['pos']),
                         int(n['has_gauss']), float(n['cached_gaussian'])))
    p = state['python']
    random.setstate((int(p['version']), tuple(int(w) for w in p['words'].tolist()),
                     p['gauss_next']))
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreAfterReplay:
    """Wraps the loop's data iterator: after ``skip`` fetches (mmengine's replay of the
    finished iterations) it restores the RNGs, then unwraps itself."""

    def __init__(self, loop, skip: int, restore):
        self.loop, self.inner, self.left, self.restore = loop, loop.dataloader_iterator, skip, restore

    def __iter__(self):
        return self

    def __next__(self):
        if self.left == 0:
            self.restore()
            self.loop.dataloader_iterator = self.inner
        else:
            self.left -= 1
        return next(self.inner)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _SkipTrainedBatches:
    """Stands in for an ``EpochBasedTrainLoop``'s dataloader for the one epoch a mid-epoch
    checkpoint (``SignalCheckpointHook``, ``by_epoch=False`` checkpoints) stopped in: skips
    the ``skip`` batches already trained, restores the RNGs, yields the rest (``len`` = the
    rest, so the hooks see the epoch end), then puts the real dataloader back."""

    def __init__(self, loop, skip: int, restore):
        self.loop, self.inner, self.skip, self.restore = loop, loop.dataloader, skip, restore

    def __len__(self):
        return len(self.inner) - self.skip

    def __iter__(self):
        it = iter(self.inner)
        for _ in range(self.skip):
            next(it)
        self.restore()
        try:
            yield from it
        finally:
            self.loop.dataloader = self.inner

    def __getattr__(self, name):
        return getattr(self.inner, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Checkpoint the RNG states of every rank and restore them on resume (see module doc).

    Args:
        fork_val (bool): run validation in a fork of the RNG states. Default True.
    """

    # after every hook but the checkpoint hooks (CheckpointHook VERY_LOW = 90,
    # SignalCheckpointHook LOWEST = 100): restores come after the others' before_train_epoch,
    # and with several processes the states are gathered before a checkpoint is saved
    priority = 85

    def __init__(self, fork_val: bool = True):
        self.fork_val = fork_val
        self._pending: Optional[Dict[str, Any]] = None
        self._resumed = False
        self._val_fork: Optional[Dict[str, Any]] = None
        # several processes: Runner.save_checkpoint runs on rank 0 only, so every rank's
        # states are all-gathered beforehand, at the end of each iteration / epoch and
        # before validation (a few KB per process)
        self._gathered: Optional[list] = None
        self._gathered_val: Optional[list] = None

    # --- saving ----------------------------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # inside validation (mmengine re-saves the epoch checkpoint when save_best improves)
        # the training stream is the fork taken before validation, not the current state
        if get_world_size() == 1:
            ranks = [self._val_fork if self._val_fork is not None else capture_rng_state()]
        else:
            ranks = self._gathered_val if self._val_fork is not None else self._gathered
            if ranks is None:
                runner.logger.warning('RNGStateHook: no gathered RNG states for this '
                                      'checkpoint; only rank 0 is saved')
                ranks = [capture_rng_state()]
        saved = dict(world_size=len(ranks), ranks=ranks)
        sampler = self._sampler(runner)
        if sampler is not None:
            saved['sampler'] = {k: int(getattr(sampler, k)) for k in ('seed', 'epoch')
                                if isinstance(getattr(sampler, k, None), int)}
        checkpoint['rng_state'] = saved

    def _gather(self) -> None:
        if get_world_size() > 1:
            self._gathered = all_gather_object(capture_rng_state())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._gather()

    def after_train_epoch(self, runner) -> None:
        self._gather()

    # --- restoring -------------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from: weights only, the run's randomness starts afresh
        self._resumed = True
        saved = checkpoint.get('rng_state')
        if saved is None:
            runner.logger.warning('resumed checkpoint has no rng_state (written before '
                                  'RNGStateHook): the run continues with fresh RNG states')
            return
        ranks, rank = saved['ranks'], get_rank()
        if len(ranks) != get_world_size():
            runner.logger.warning(f'rng_state was saved by {len(ranks)} process(es), resuming '
                                  f'with {get_world_size()}: RNG states not restored')
            return
        self._pending = ranks[rank]
        sampler = self._sampler(runner)
        for key, value in (saved.get('sampler') or {}).items():
            if sampler is not None and hasattr(sampler, key):
                setattr(sampler, key, value)

    def before_train_epoch(self, runner) -> None:
        if not self._resumed:
            return
        self._resumed = False  # only the first epoch after the resume
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and loop.iter > 0:
            loop.dataloader_iterator = _RestoreAfterReplay(loop, loop.iter, self._restore)
            return
        if isinstance(loop, EpochBasedTrainLoop):
            per_epoch = len(loop.dataloader)
            done = runner.iter - runner.epoch * per_epoch
            if 0 < done < per_epoch:  # a mid-epoch checkpoint: do not train those batches twice
                runner.logger.info(f'resuming inside epoch {runner.epoch + 1}: skipping its '
                                   f'{done} trained batch(es) of {per_epoch}')
                loop.dataloader = _SkipTrainedBatches(loop, done, self._restore)
                return
        self._restore()

    def _restore(self) -> None:
        if self._pending is not None:
            restore_rng_state(self._pending)
            self._pending = None

    # --- validation in a fork --------------------------------------------------------------
    def before_val_epoch(self, runner) -> None:
        if self.fork_val:
            self._val_fork = capture_rng_state()
            if get_world_size() > 1:
                self._gathered_val = all_gather_object(self._val_fork)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self.fork_val and self._val_fork is not None:
            restore_rng_state(self._val_fork)
            self._val_fork = self._gathered_val = None

    @staticmethod
    def _sampler(runner):
        loop = getattr(runner, '_train_loop', None)
        loader = getattr(loop, 'dataloader', None) if loop is not None else None
        return getattr(loader, 'sampler', None) if loader is not None else None
