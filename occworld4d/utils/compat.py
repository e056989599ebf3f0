"""Compatibility fixes for mmengine 0.10.7 under current torch, applied once on import.

1. torch >= 2.6 defaults ``torch.load(weights_only=True)``; mmengine 0.10.7's local
   checkpoint loader does not pass ``weights_only`` and so cannot ``load_from`` or
   ``resume`` its own checkpoints (they hold optimizer state, message hub, numpy
   scalars). Checkpoints a user points the Runner at are trusted, so the local loader
   is re-registered to pass ``weights_only=False``.
2. mmengine writes checkpoints in place; an interrupted save leaves a truncated file
   that a later ``resume`` picks up. Local saves go to ``<name>.tmp`` and are renamed.
"""
import os
import os.path as osp

import torch
from mmengine.runner import checkpoint as _ckpt

_APPLIED = False


def load_trusted_local_checkpoint(filename: str, map_location=None):
    """Load a local checkpoint written by mmengine / occworld4d (trusted input).

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        RuntimeError: naming the path when the file is not a readable checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    try:
        return torch.load(filename, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises several types for a corrupt file
        raise RuntimeError(f'checkpoint {filename!r} could not be read (expected a file '
                           f'written by torch.save): {err}') from err


def atomic_save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
    """``mmengine.runner.checkpoint.save_checkpoint`` with a write-then-rename for local paths."""
    if '://' in str(filename):  # remote backends keep mmengine's behaviour
        return _ORIGINAL_SAVE(checkpoint, filename, file_client_args, backend_args)
    filename = str(filename)
    os.makedirs(osp.dirname(osp.abspath(filename)), exist_ok=True)
    tmp = filename + '.tmp'
    with open(tmp, 'wb') as f:
        torch.save(checkpoint, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, filename)


_ORIGINAL_SAVE = _ckpt.save_checkpoint


def apply_mmengine_compat() -> None:
    """Install both fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _ckpt.CheckpointLoader.register_scheme(prefixes='', loader=load_trusted_local_checkpoint,
                                           force=True)
    import mmengine.runner.runner as _runner_mod
    _ckpt.save_checkpoint = atomic_save_checkpoint
    _runner_mod.save_checkpoint = atomic_save_checkpoint
    _APPLIED = True
