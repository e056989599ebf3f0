"""Small I/O helpers: atomic writes so an interrupted run never leaves half a file."""
import contextlib
import json
import os
import os.path as osp
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary name keeps the extension (``x.tmp.npz``) so that writers which append
    one (``np.savez``) still write exactly the yielded path.
    """
    path = str(path)
    os.makedirs(osp.dirname(osp.abspath(path)) or '.', exist_ok=True)
    root, ext = osp.splitext(path)
    tmp = f'{root}.tmp{os.getpid()}{ext}'
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def save_npz_atomic(path: str, compressed: bool = True, **arrays: np.ndarray) -> None:
    """``np.savez[_compressed]`` to ``path`` through a temporary file."""
    with atomic_path(path) as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)


def save_json_atomic(path: str, obj, indent: int = 2) -> None:
    """``json.dump(obj)`` to ``path`` through a temporary file."""
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump(obj, f, indent=indent)


def real_data_root() -> str:
    """Folder of the shared real samples: ``$OCCWORLD4D_REAL_DATA`` or ``<repo>/../shared/data/real``."""
    default = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), '..',
                       'shared', 'data', 'real')
    return osp.abspath(os.environ.get('OCCWORLD4D_REAL_DATA', default))
