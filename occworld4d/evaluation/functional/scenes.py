"""Scenes as the statistics take them: (N, T, X, Y, Z) integer class ids from arrays, tensors
or sequences of (T, X, Y, Z) scenes."""
from typing import Sequence, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]
Scenes = Union[ArrayLike, Sequence[ArrayLike]]


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _stack(scenes: Scenes, name: str = 'scenes') -> np.ndarray:
    """(N, T, X, Y, Z) integer array from an array or a sequence of (T, X, Y, Z) arrays."""
    if isinstance(scenes, (np.ndarray, torch.Tensor)):
        arr = _np(scenes)
        if arr.ndim == 4:
            arr = arr[None]
    else:
        items = [_np(s) for s in scenes]
        if not items:
            raise ValueError(f'{name}: no scenes given')
        shapes = sorted({a.shape for a in items})
        if len(shapes) > 1:
            raise ValueError(f'{name}: scenes of different shapes {shapes}; expected one '
                             '(T, X, Y, Z)')
        arr = np.stack(items)
    if arr.ndim != 5:
        raise ValueError(f'{name}: expected (N, T, X, Y, Z) or (T, X, Y, Z) class ids, got '
                         f'shape {arr.shape}')
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'{name}: expected integer class ids, got dtype {arr.dtype}')
    return arr
