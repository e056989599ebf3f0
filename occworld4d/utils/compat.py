"""Checkpoint loading and saving for mmengine 0.10.7 under current torch, applied once on import.

1. **Safe loading by default.** mmengine 0.10.7's local loader calls ``torch.load`` without
   ``weights_only``. Every local checkpoint path (``load_from``, ``resume``, ``tools/test.py``,
   ``tools/sample.py``, ``model.tokenizer_ckpt``, the ``GenerationMetric`` extractor,
   ``cache_latents.py``: all go through mmengine's ``CheckpointLoader`` or
   :func:`load_checkpoint_file`) is re-registered to :func:`load_checkpoint_file`, which
   unpickles with ``torch.load(weights_only=True)`` and allow-lists exactly the types an
   mmengine 0.10.7 checkpoint holds besides tensors (:data:`CHECKPOINT_SAFE_GLOBALS`: numpy
   arrays / scalars / numeric dtypes in the message hub, mmengine's ``HistoryBuffer`` and its four
   statistics methods). Anything else in the pickle
   (a crafted payload) is refused with :class:`UntrustedCheckpointError`, naming the file and
   the way to allow it: ``--trust-checkpoint`` on the tools, ``trust_checkpoint=True`` in a
   config, or :func:`set_trust_checkpoint` / :func:`trusted_checkpoints` in Python. A trusted
   load is a full pickle and warns with the file name. ``.safetensors`` files (a plain state
   dict of tensors) are accepted wherever a checkpoint is.
   A *work dir* is accepted wherever a checkpoint file is (:func:`resolve_checkpoint`): its
   latest checkpoint is used (``last_checkpoint``'s target, else the newest ``*.pth`` /
   ``best_*.pth`` / ``.safetensors``) and the chosen file is logged.
2. **Atomic saves.** mmengine writes checkpoints in place; local saves
   (:func:`atomic_save_checkpoint`, installed as mmengine's ``save_checkpoint``, which the
   Runner's ``save_checkpoint``, ``CheckpointHook`` and ``EMAHook`` call) go through the one
   atomic-write helper, :func:`occworld4d.utils.io.atomic_open`: ``<stem>.tmp<pid>.pth``,
   fsynced, renamed, the temporary removed on failure; a checkpoint file is either complete or
   absent. (Rotation, ``last_checkpoint`` and resume fallback:
   ``occworld4d.engine.hooks.checkpoint_hook``.)
"""
import contextlib
import os
import os.path as osp
import pickle
import warnings
import zipfile
from typing import Optional, Tuple

import mmengine.runner.runner as _runner_mod
import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as _ckpt

from .io import atomic_open, is_temporary

_APPLIED = False
_TRUST = False

TRUST_HINT = ('pass --trust-checkpoint to the tool (or set trust_checkpoint=True in the config) '
              'only if you trust where the file comes from')


class CheckpointLoadError(RuntimeError):
    """A checkpoint file could not be read (corrupt, truncated or refused)."""


class UntrustedCheckpointError(CheckpointLoadError):
    """The pickle of a checkpoint holds objects outside the safe allow-list."""


def set_trust_checkpoint(enabled: bool = True) -> None:
    """Allow (``True``) or forbid (``False``, the default) full-pickle checkpoint loading."""
    global _TRUST
    _TRUST = bool(enabled)


def trust_checkpoint_enabled() -> bool:
    return _TRUST


@contextlib.contextmanager
def trusted_checkpoints(enabled: bool = True):
    """Context manager: full-pickle loading allowed inside (restores the setting on exit)."""
    global _TRUST
    old, _TRUST = _TRUST, bool(enabled)
    try:
        yield
    finally:
        _TRUST = old


_HB_STATISTICS = ('min', 'max', 'current', 'mean')
NUMERIC_DTYPE_CLASSES = ('BoolDType', 'Int8DType', 'Int16DType', 'Int32DType', 'Int64DType',
                         'UInt8DType', 'UInt16DType', 'UInt32DType', 'UInt64DType',
                         'Float16DType', 'Float32DType', 'Float64DType')


def _history_buffer_getattr(obj, name):
    """The only ``getattr`` a checkpoint may call: a statistics method of ``HistoryBuffer``.

    mmengine pickles ``HistoryBuffer._statistics_methods`` (the functions ``HistoryBuffer.min``
    ...), which protocol 2 writes as ``getattr(HistoryBuffer, 'min')``.
    """
    if obj is HistoryBuffer and name in _HB_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refused getattr({obj!r}, {name!r}) in a checkpoint: only '
                                 f'HistoryBuffer.{"/".join(_HB_STATISTICS)} are allowed')


def checkpoint_safe_globals() -> list:
    """Types (besides torch's defaults) that a safe load of an mmengine checkpoint allows.

    Found by ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints of every
    model family of the project trained with mmengine 0.10.7 (epoch, best and EMA checkpoints;
    tests/test_engine/test_safe_checkpoint_loading.py checks them).
    """
    try:  # local: the module moved in numpy 2
        from numpy._core.multiarray import _reconstruct, scalar
        mod = 'numpy._core.multiarray'
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
        mod = 'numpy.core.multiarray'
    allowed = [HistoryBuffer, np.ndarray, np.dtype,
               (_reconstruct, f'{mod}._reconstruct'), (scalar, f'{mod}.scalar'),
               (_history_buffer_getattr, 'builtins.getattr')]
    # dtypes are rebuilt as numpy.dtypes.<Name>DType instances (numpy >= 1.25): mmengine's
    # HistoryBuffer holds float64 / int64 arrays; the other fixed-width numeric dtypes are the
    # same kind of plain data (a float32 value logged by a model). Never Object / Void dtypes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in NUMERIC_DTYPE_CLASSES:
            if isinstance(getattr(dtypes, name, None), type):
                allowed.append(getattr(dtypes, name))
    if mod == 'numpy._core.multiarray':  # the same two functions in files written by numpy 1.x
        allowed += [(_reconstruct, 'numpy.core.multiarray._reconstruct'),
                    (scalar, 'numpy.core.multiarray.scalar')]
    return allowed


def is_safetensors(filename: str) -> bool:
    return str(filename).endswith('.safetensors')


def _load_safetensors(filename: str, map_location=None) -> dict:
    try:
        from safetensors.torch import load_file  # only .safetensors reads need the package
    except ImportError as err:  # pragma: no cover - safetensors is in requirements/runtime.txt
        raise CheckpointLoadError(f'checkpoint {filename!r} is a .safetensors file; install '
                                  'the safetensors package (requirements/runtime.txt)') from err
    device = map_location if isinstance(map_location, str) else 'cpu'
    try:
        return dict(load_file(filename, device=device))
    except Exception as err:
        raise CheckpointLoadError(f'checkpoint {filename!r} could not be read (expected a '
                                  f'.safetensors file of tensors): {err}') from err


CHECKPOINT_SUFFIXES = ('.pth', '.safetensors')


def _record_target(work_dir: str) -> Optional[str]:
    """The checkpoint named by ``<work_dir>/last_checkpoint`` when it exists (the recorded path
    as written, or the same file name inside ``work_dir`` when the folder has moved)."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record) as f:
        target = f.read().strip()
    if not target:
        return None
    for path in (target, osp.join(work_dir, osp.basename(target))):
        if osp.isfile(path) and checkpoint_is_intact(path):
            return path
    return None


def latest_checkpoint(work_dir: str) -> Tuple[Optional[str], str]:
    """The checkpoint a work dir stands for, and why it was chosen.

    ``last_checkpoint``'s target (mmengine / ``SafeCheckpointHook`` write it after every save)
    when it is intact; else the newest intact ``*.pth`` / ``best_*.pth`` / ``*.safetensors``
    of the folder (modification time, then name). ``(None, reason)`` when there is none.
    """
    target = _record_target(work_dir)
    if target is not None:
        return target, f'{osp.join(work_dir, "last_checkpoint")} names it'
    files = [osp.join(work_dir, n) for n in os.listdir(work_dir)
             if n.endswith(CHECKPOINT_SUFFIXES) and not is_temporary(n)
             and osp.isfile(osp.join(work_dir, n))]
    files.sort(key=lambda p: (osp.getmtime(p), osp.basename(p)), reverse=True)
    for path in files:
        if checkpoint_is_intact(path):
            return path, f'the newest of {len(files)} checkpoint file(s) in {work_dir}'
    if files:
        return None, f'{work_dir} holds {len(files)} checkpoint file(s), none intact'
    return None, f'{work_dir} holds no last_checkpoint and no *.pth / *.safetensors file'


def resolve_checkpoint(path: str, logger='current') -> str:
    """A checkpoint file, or a work dir -> its latest checkpoint (:func:`latest_checkpoint`),
    logged as ``work dir D: using checkpoint F (why)``. Files and remote paths pass through.

    Raises:
        FileNotFoundError: the path does not exist, or a folder holds no intact checkpoint
            (naming the folder and what was expected).
    """
    path = str(path)
    if '://' in path:
        return path
    path = osp.expanduser(path)
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist (expected a checkpoint '
                                'file or a work dir holding one)')
    found, why = latest_checkpoint(path)
    if found is None:
        raise FileNotFoundError(f'work dir {path!r} has no checkpoint to load: {why}; expected '
                                'a folder written by tools/train.py or a checkpoint file')
    if logger is not None:
        print_log(f'work dir {path}: using checkpoint {found} ({why})', logger=logger)
    return found


def load_checkpoint_file(filename: str, map_location=None, trust: Optional[bool] = None):
    """Load a local checkpoint; safe (``weights_only=True`` + allow-list) unless trusted.

    Args:
        filename: a ``.pth`` written by ``torch.save`` (mmengine / occworld4d checkpoints, plain
            state dicts) or a ``.safetensors`` file (returned as a plain state dict).
        map_location: as for ``torch.load``.
        trust: full-pickle loading; ``None`` = the process setting (:func:`set_trust_checkpoint`,
            set by ``--trust-checkpoint`` / ``trust_checkpoint=True``).

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        UntrustedCheckpointError: the pickle holds a type outside the allow-list (names the
            file, the type and ``--trust-checkpoint``).
        CheckpointLoadError: naming the path when the file is not a readable checkpoint.
    """
    filename = osp.expanduser(str(filename))
    if osp.isdir(filename):  # a work dir: its latest checkpoint, logged
        filename = resolve_checkpoint(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    if is_safetensors(filename):
        return _load_safetensors(filename, map_location)
    trust = _TRUST if trust is None else trust
    if trust:
        msg = (f'loading checkpoint {filename!r} as a full pickle (--trust-checkpoint / '
               'trust_checkpoint=True): it can run arbitrary code')
        warnings.warn(msg, stacklevel=2)
        print_log(msg, logger='current', level=30)
        try:
            return torch.load(filename, map_location=map_location, weights_only=False)
        except Exception as err:
            raise CheckpointLoadError(f'checkpoint {filename!r} could not be read (expected a '
                                      f'file written by torch.save): {err}') from err
    if not hasattr(torch.serialization, 'safe_globals'):  # torch < 2.5
        raise CheckpointLoadError(
            f'checkpoint {filename!r}: safe loading of mmengine checkpoints needs torch >= 2.5 '
            f'(torch.serialization.safe_globals; this is torch {torch.__version__}); '
            f'{TRUST_HINT}')
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if 'Weights only load failed' in text or 'GLOBAL' in text or 'refused' in text:
            detail = next((line.strip() for line in text.splitlines()
                           if 'GLOBAL' in line or 'refused' in line or 'reduce' in line),
                          text.splitlines()[0] if text else '')
            raise UntrustedCheckpointError(
                f'checkpoint {filename!r} was refused by the safe loader (weights_only=True): it '
                f'holds a type outside the allow-list of mmengine checkpoint types ({detail}). '
                f'It may run code when unpickled; {TRUST_HINT}.') from err
        raise CheckpointLoadError(f'checkpoint {filename!r} could not be read (expected a file '
                                  f'written by torch.save): {err}') from err
    except Exception as err:  # torch raises several types for a corrupt / truncated file
        raise CheckpointLoadError(f'checkpoint {filename!r} could not be read (expected a file '
                                  f'written by torch.save): {err}') from err


def load_from_local(filename: str, map_location=None):
    """The loader registered for local paths in mmengine's ``CheckpointLoader``.

    mmengine logs ``Loads checkpoint by {loader.__name__[10:]} backend``, i.e. it expects the
    ``load_from_<backend>`` naming of its own loaders; this name makes the line read "by local
    backend" (registering :func:`load_checkpoint_file` itself printed "point_file").
    """
    return load_checkpoint_file(filename, map_location)


def load_trusted_local_checkpoint(filename: str, map_location=None):
    """Backwards-compatible name: the default (safe unless trusted) local loader."""
    return load_checkpoint_file(filename, map_location)


def checkpoint_is_intact(filename: str) -> bool:
    """Cheap integrity check without unpickling: a complete torch zip file whose CRCs match
    (or a readable .safetensors header)."""
    if not osp.isfile(filename) or osp.getsize(filename) == 0:
        return False
    if is_safetensors(filename):
        try:
            _load_safetensors(filename)
            return True
        except CheckpointLoadError:
            return False
    try:
        with zipfile.ZipFile(filename) as zf:
            names = zf.namelist()
            if not any(n.endswith('data.pkl') for n in names):
                return False
            return zf.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def atomic_save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
    """``mmengine.runner.checkpoint.save_checkpoint`` through the atomic-write helper
    (:func:`occworld4d.utils.io.atomic_open`) for local paths.

    A failure during the write removes the temporary and leaves any older file untouched.
    """
    if '://' in str(filename):  # remote backends keep mmengine's behaviour
        return _ORIGINAL_SAVE(checkpoint, filename, file_client_args, backend_args)
    with atomic_open(str(filename), 'wb') as f:
        torch.save(checkpoint, f)


_ORIGINAL_SAVE = _ckpt.save_checkpoint


def apply_mmengine_compat() -> None:
    """Install the safe local loader and the atomic save (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _ckpt.CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    _ckpt.save_checkpoint = atomic_save_checkpoint
    _runner_mod.save_checkpoint = atomic_save_checkpoint
    _APPLIED = True
