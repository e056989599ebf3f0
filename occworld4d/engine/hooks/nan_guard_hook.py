"""``NonFiniteGuardHook``: stop training on a NaN / Inf loss instead of training on garbage.

On by default (``configs/_base_/default_runtime.py``, ``default_hooks.nan_guard``). Before
training it wraps the ``backward`` and ``step`` of the runner's optim wrapper(s) (instance
attributes, restored after training): a non-finite loss, or (plain ``OptimWrapper``)
non-finite gradients, make the optimizer step of that iteration a no-op, so the weights stay as
they were. After the iteration the hook raises :class:`NonFiniteLossError` naming the
iteration, the epoch and the loss terms that went non-finite -- before the checkpoint hook and
the EMA hook run, so no checkpoint is written or rotated after the bad step. With
``max_skip_batches=N`` the first N such batches are skipped with a warning instead (the update
is dropped, training goes on); the (N+1)-th stops. Non-finite parameters after a step that was
taken (an optimizer overflow) always stop: that update cannot be undone.

With several processes the skip decision is all-reduced, so every rank skips the same steps.
``AmpOptimWrapper`` handles inf gradients itself (dynamic loss scaling), so only its loss is
checked.
"""
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict

from occworld4d.registry import HOOKS

from .checkpoint_hook import non_finite_parameters


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN / Inf loss, gradient or parameter."""


def _is_finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all())
    if isinstance(value, (int, float)):
        return value == value and value not in (float('inf'), float('-inf'))
    return True


def _grads_finite(optim_wrapper) -> bool:
    grads = [p.grad for group in optim_wrapper.optimizer.param_groups for p in group['params']
             if p.grad is not None]
    if not grads:
        return True
    return bool(torch.stack([torch.isfinite(g.detach()).all() for g in grads]).all())


def _all_ranks_or(flag: bool) -> bool:
    """True when ``flag`` is True on any rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Stop (or skip up to ``max_skip_batches`` batches) on a non-finite loss.

    Args:
        max_skip_batches (int): bad batches to skip (update dropped, warning) before stopping.
            Default 0: stop at the first.
        check_grads (bool): treat non-finite gradients like a non-finite loss (plain
            ``OptimWrapper``). Default True.
        check_params (bool): stop when a taken step left non-finite parameters. Default True.
    """

    priority = 'ABOVE_NORMAL'  # after_train_iter before EMAHook (49), logger, checkpoint

    def __init__(self, max_skip_batches: int = 0, check_grads: bool = True,
                 check_params: bool = True):
        if not isinstance(max_skip_batches, int) or max_skip_batches < 0:
            raise ValueError(f'NonFiniteGuardHook: max_skip_batches must be an integer >= 0, '
                             f'got {max_skip_batches!r}')
        self.max_skip_batches = max_skip_batches
        self.check_grads = check_grads
        self.check_params = check_params
        self.skipped = 0
        self._bad_loss = False
        self._bad_grads = False
        self._step_skipped = False
        self._wrapped: List = []

    # --- wrapping the optimizer ---------------------------------------------------------------
    def before_train(self, runner) -> None:
        self.skipped = 0
        optim_wrapper = runner.optim_wrapper
        wrappers = (list(optim_wrapper.values()) if isinstance(optim_wrapper, OptimWrapperDict)
                    else [optim_wrapper])
        for wrapper in wrappers:
            if hasattr(wrapper, 'backward') and hasattr(wrapper, 'step'):
                self._wrap(wrapper)

    def _wrap(self, wrapper) -> None:
        if '_nonfinite_guard_orig' in vars(wrapper):
            return
        orig_backward, orig_step = wrapper.backward, wrapper.step
        check_grads = self.check_grads and not isinstance(wrapper, AmpOptimWrapper)
        hook = self

        def backward(loss, **kwargs):
            if not _is_finite(loss):
                hook._bad_loss = True
            return orig_backward(loss, **kwargs)  # always: DDP ranks must all reduce

        def step(**kwargs):
            bad_grads = check_grads and not _grads_finite(wrapper)
            hook._bad_grads = hook._bad_grads or bad_grads
            if _all_ranks_or(hook._bad_loss or bad_grads):
                hook._step_skipped = True
                return None  # update_params still zeroes the gradients
            return orig_step(**kwargs)

        wrapper._nonfinite_guard_orig = (orig_backward, orig_step)
        wrapper.backward, wrapper.step = backward, step
        self._wrapped.append(wrapper)

    def after_train(self, runner) -> None:
        self._unwrap()

    def _unwrap(self) -> None:
        for wrapper in self._wrapped:
            for name in ('backward', 'step', '_nonfinite_guard_orig'):
                vars(wrapper).pop(name, None)
        self._wrapped = []

    # --- per iteration ------------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._bad_loss = self._bad_grads = self._step_skipped = False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[Dict] = None) -> None:
        outputs = outputs or {}
        bad_terms = [k for k, v in outputs.items() if not _is_finite(v)]
        bad_loss_terms = [k for k in bad_terms if 'loss' in k]
        bad_loss_terms = [k for k in bad_loss_terms if k != 'loss'] or bad_loss_terms  # terms
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        values = ', '.join(f'{k}={float(v) if isinstance(v, (int, float)) else v}'
                           for k, v in outputs.items() if k in bad_terms)
        if self._step_skipped:
            what = (f'non-finite loss term(s) {bad_loss_terms or bad_terms} ({values})'
                    if bad_terms else
                    'non-finite gradients' if self._bad_grads else 'a non-finite loss')
            if self.skipped < self.max_skip_batches:
                self.skipped += 1
                runner.logger.warning(
                    f'NonFiniteGuardHook: {what} at {where}; the update of this batch was '
                    f'skipped ({self.skipped}/{self.max_skip_batches} allowed)')
                return
            self._stop(runner, f'{what} at {where}; training stopped before this update, so the '
                       'weights and checkpoints are those of the previous iteration'
                       + (f' ({self.skipped} bad batch(es) skipped before)' if self.skipped
                          else '') + '. Lower the learning rate, check the data, or allow '
                       'skips with default_hooks.nan_guard.max_skip_batches=N')
        if bad_loss_terms:  # the update was not guarded (custom train_step)
            self._stop(runner, f'non-finite loss term(s) {bad_loss_terms} ({values}) at {where}')
        if self.check_params:
            bad = non_finite_parameters(runner.model)
            if bad:
                self._stop(runner, f'{len(bad)} parameter(s) became NaN / Inf at {where} '
                           f'(first: {bad[:5]}); losses: '
                           + ', '.join(f'{k}={v}' for k, v in outputs.items()))

    def _stop(self, runner, message: str) -> None:
        message = f'NonFiniteGuardHook: {message}'
        runner.logger.error(message)
        self._unwrap()
        raise NonFiniteLossError(message)
