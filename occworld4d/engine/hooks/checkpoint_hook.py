"""``SafeCheckpointHook``: mmengine's ``CheckpointHook`` made crash-proof.

mmengine 0.10.7's hook removes the oldest checkpoint (rotation with ``max_keep_ckpts``) and the
previous best one (``save_best``) *before* it writes the new one, writes ``last_checkpoint`` in
place and resumes from whatever ``last_checkpoint`` names. This subclass:

- writes the new checkpoint first (atomically: ``occworld4d.utils.compat.atomic_save_checkpoint``,
  through the one atomic-write helper ``occworld4d.utils.io.atomic_open``)
  and removes the old ones only after the write succeeded; a failed write leaves every older
  checkpoint, ``last_checkpoint`` and the rotation list as they were;
- writes ``last_checkpoint`` by write-fsync-rename;
- refuses to write a checkpoint whose model parameters are not finite
  (:class:`NonFiniteCheckpointError`; nothing is written or rotated);
- on auto-resume (``resume=True`` without ``load_from``, ``tools/train.py --resume``) resumes from
  the newest *intact* checkpoint (``last_checkpoint``'s target first, then the work dir's
  ``*.pth`` newest first), warning with each file it skipped and why;
- on ``load_from`` without resume, compares the checkpoint's keys and shapes with the model and
  raises :class:`LoadFromMismatchError` listing missing / unexpected / mismatched keys, unless
  the config sets ``load_from_strict=False``;
- removes stale temporaries (``*.tmp<pid>.pth``, ``last_checkpoint.tmp<pid>``) of killed saves
  before training;
- applies the config key ``trust_checkpoint=True`` (full-pickle loading, see
  ``occworld4d.utils.compat``).

Registered as ``SafeCheckpointHook`` and, in the occworld4d scope, also under mmengine's name
``CheckpointHook`` so that configs written with ``type='CheckpointHook'`` get it too.
"""
import glob
import os
import os.path as osp
import warnings
from typing import List, Optional, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from occworld4d.models.tokenizers.base import filled_on_load
from occworld4d.registry import HOOKS
from occworld4d.utils.compat import (CheckpointLoadError, checkpoint_is_intact, is_safetensors,
                                     load_checkpoint_file, set_trust_checkpoint)
from occworld4d.utils.io import is_temporary, temporary_target, write_text_atomic


class NonFiniteCheckpointError(RuntimeError):
    """The model holds NaN / Inf parameters: such a checkpoint is never written."""


class LoadFromMismatchError(ValueError):
    """``load_from``'s checkpoint does not match the model (strict loading)."""


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def non_finite_parameters(model) -> List[str]:
    """Names of the floating-point parameters of ``model`` holding NaN or Inf."""
    model = _unwrap(model)
    named = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]
    if not named:
        return []
    flags = torch.stack([torch.isfinite(p.detach()).all() for _, p in named])
    if bool(flags.all()):
        return []
    return [n for (n, _), ok in zip(named, flags.tolist()) if not ok]


def is_stale_temporary(name: str) -> bool:
    """Temporaries of an interrupted atomic save of a checkpoint or of ``last_checkpoint``
    (``epoch_3.tmp<pid>.pth``, ``last_checkpoint.tmp<pid>``; also the ``X.pth.tmp`` /
    ``last_checkpoint.tmp`` of older releases): :func:`occworld4d.utils.io.temporary_target`."""
    target = temporary_target(name)
    return target is not None and (target.endswith(('.pth', '.safetensors'))
                                   or target == 'last_checkpoint')


def find_intact_checkpoint(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The newest intact checkpoint to resume from, and what was skipped (one line each).

    ``last_checkpoint``'s target comes first; then every ``*.pth`` of the work dir (and of the
    target's folder), newest first, except ``best_*`` (saved without optimizer state).
    """
    skipped: List[str] = []
    candidates: List[str] = []
    folders = [work_dir]
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            target = f.read().strip()
        if target:
            if '://' in target:  # remote storage: trust the record, mmengine's behaviour
                return target, skipped
            candidates.append(target)
            folders.append(osp.dirname(target))
        else:
            skipped.append(f'{record} (empty)')
    others = []
    for folder in folders:
        for path in glob.glob(osp.join(glob.escape(folder), '*.pth')):
            if not osp.basename(path).startswith('best_') and not is_temporary(path):
                others.append(path)
    others.sort(key=lambda p: (osp.getmtime(p), p), reverse=True)
    seen = set()
    for path in candidates + others:
        key = osp.abspath(path)
        if key in seen:
            continue
        seen.add(key)
        if not osp.isfile(path):
            skipped.append(f'{path} (missing)')
        elif not checkpoint_is_intact(path):
            skipped.append(f'{path} (truncated or corrupt)')
        else:
            return path, skipped
    return None, skipped


def check_load_from_keys(model, checkpoint_path: str) -> None:
    """Raise :class:`LoadFromMismatchError` unless ``checkpoint_path`` fits ``model`` exactly."""
    ckpt = load_checkpoint_file(checkpoint_path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise LoadFromMismatchError(f'load_from {checkpoint_path!r}: expected a state dict or an '
                                    f'mmengine checkpoint, got {type(ckpt).__name__}')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    expected = _unwrap(model).state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not filled_on_load(k))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state) if hasattr(state[k], 'shape')
                    and tuple(state[k].shape) != tuple(expected[k].shape))
    if not (missing or unexpected or shapes):
        return

    def listing(title, keys, fmt=str):
        shown = ', '.join(fmt(k) for k in keys[:10])
        more = f' (+{len(keys) - 10} more)' if len(keys) > 10 else ''
        return f'\n  {len(keys)} {title}: {shown}{more}' if keys else ''

    raise LoadFromMismatchError(
        f'load_from {checkpoint_path!r} does not match the model ({type(_unwrap(model)).__name__})'
        + listing('missing key(s) (in the model, not in the checkpoint)', missing)
        + listing('unexpected key(s) (in the checkpoint, not in the model)', unexpected)
        + listing('shape mismatch(es)', shapes,
                  lambda k: f'{k} {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}')
        + '\nIs it a checkpoint of this config? To load only the matching keys, set '
        'load_from_strict=False (--cfg-options load_from_strict=False).')


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` are recorded, to run after a save."""

    def __init__(self, backend):
        self._backend = backend
        self.pending: List[Tuple[str, str]] = []

    def remove(self, path):
        self.pending.append(('remove', path))

    def rmtree(self, path):
        self.pending.append(('rmtree', path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) that never loses the last intact checkpoint.

    Args:
        check_finite (bool): refuse to save non-finite parameters. Default True.
        clean_temporaries (bool): remove stale temporaries (``*.tmp<pid>.pth``,
            ``last_checkpoint.tmp<pid>``) from the checkpoint folder before training. Default
            True.
        *args, **kwargs: those of ``mmengine.hooks.CheckpointHook``.
    """

    def __init__(self, *args, check_finite: bool = True, clean_temporaries: bool = True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.check_finite = check_finite
        self.clean_temporaries = clean_temporaries

    # --- loading -------------------------------------------------------------------------
    def before_run(self, runner) -> None:
        cfg = getattr(runner, 'cfg', None) or {}
        if cfg.get('trust_checkpoint', False):
            set_trust_checkpoint(True)
        resume, load_from = getattr(runner, '_resume', False), getattr(runner, '_load_from', None)
        if resume and load_from is None:
            self._select_resume_checkpoint(runner)
        elif resume and load_from is not None and is_safetensors(load_from):
            raise CheckpointLoadError(
                f'resume from {load_from!r}: a .safetensors file holds weights only (no optimizer, '
                'scheduler or iteration); use load_from without resume to start from it')
        elif load_from is not None and cfg.get('load_from_strict', True):
            check_load_from_keys(runner.model, load_from)
        if getattr(runner, '_load_from', None) is not None:
            # the whole model (its frozen tokenizer included) comes from that checkpoint, so a
            # stage-2 model needs no model.tokenizer_ckpt (FrozenTokenizerModel.init_weights)
            model = _unwrap(runner.model)
            if hasattr(model, '_tokenizer_from_full_checkpoint'):
                model._tokenizer_from_full_checkpoint = True

    def _select_resume_checkpoint(self, runner) -> None:
        path, skipped = find_intact_checkpoint(runner.work_dir)
        if skipped:
            msg = ('auto-resume skipped: ' + '; '.join(skipped)
                   + (f'; resuming from {path}' if path else ''))
            runner.logger.warning(msg)
            warnings.warn(msg, stacklevel=2)
        if path is None:
            runner.logger.warning(f'no intact checkpoint in {runner.work_dir} to resume from; '
                                  'training starts from scratch')
            runner._resume = False
        else:
            runner._load_from = path

    # --- saving --------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.clean_temporaries and is_main_process():
            self._remove_stale_temporaries(runner)

    def _remove_stale_temporaries(self, runner) -> None:
        folders = {osp.abspath(runner.work_dir)}
        if '://' not in str(self.out_dir):
            folders.add(osp.abspath(str(self.out_dir)))
        for folder in folders:
            if not osp.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                path = osp.join(folder, name)
                if is_stale_temporary(name) and osp.isfile(path):
                    os.remove(path)
                    runner.logger.warning(f'removed stale temporary {path} (an interrupted save)')

    def _check_finite_or_raise(self, runner) -> None:
        if not self.check_finite:
            return
        bad = non_finite_parameters(runner.model)
        if bad:
            raise NonFiniteCheckpointError(
                f'refusing to save a checkpoint at epoch {runner.epoch + 1} / iteration '
                f'{runner.iter}: {len(bad)} parameter(s) hold NaN or Inf (first: {bad[:5]}); the '
                'previous checkpoints are kept')

    def _save_checkpoint_with_step(self, runner, step, meta):
        self._check_finite_or_raise(runner)
        old_ids = list(getattr(self, 'keep_ckpt_ids', []))
        old_info = runner.message_hub.runtime_info.get('keep_ckpt_ids')
        old_last, old_last_info = self.last_ckpt, runner.message_hub.runtime_info.get('last_ckpt')
        outdated: List[str] = []
        if self.max_keep_ckpts > 0:
            if not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    outdated.append(self.file_backend.join_path(
                        self.out_dir, self.filename_tmpl.format(self.keep_ckpt_ids.popleft())))
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir, ckpt_filename, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        except BaseException:  # nothing was written: restore the rotation state
            if self.max_keep_ckpts > 0:
                self.keep_ckpt_ids.clear()
                self.keep_ckpt_ids.extend(old_ids)
                if old_info is None:
                    runner.message_hub.runtime_info.pop('keep_ckpt_ids', None)
                else:
                    runner.message_hub.update_info('keep_ckpt_ids', old_info)
            self.last_ckpt = old_last
            if old_last_info is None:
                runner.message_hub.runtime_info.pop('last_ckpt', None)
            else:
                runner.message_hub.update_info('last_ckpt', old_last_info)
            raise
        if not is_main_process():
            return
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), str(self.last_ckpt))
        self._remove(runner, [('remove', p) for p in outdated])

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self.save_best:
            return
        self._check_finite_or_raise(runner)
        backend = self.file_backend
        deferred = _DeferredRemoval(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        if is_main_process():
            self._remove(runner, deferred.pending)

    def _remove(self, runner, operations) -> None:
        """Remove outdated checkpoints, never one that is still current."""
        keep = {str(self.last_ckpt), str(getattr(self, 'best_ckpt_path', None))}
        keep |= {str(p) for p in (getattr(self, 'best_ckpt_path_dict', None) or {}).values()}
        for op, path in operations:
            if str(path) in keep:
                continue
            if op == 'remove' and self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif op == 'rmtree' and self.file_backend.isdir(path):
                self.file_backend.rmtree(path)  # checkpoints saved by deepspeed are folders


# configs written with mmengine's name get the safe hook in the occworld4d scope
HOOKS.register_module(name='CheckpointHook', module=SafeCheckpointHook)

__all__ = ['LoadFromMismatchError', 'NonFiniteCheckpointError', 'SafeCheckpointHook',
           'find_intact_checkpoint', 'check_load_from_keys', 'non_finite_parameters']
