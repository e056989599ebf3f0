"""Small I/O helpers: atomic writes so an interrupted run never leaves half a file; names from
data files made safe as file names (``safe_file_name``, ``join_inside``)."""
import contextlib
import json
import os
import os.path as osp
import re
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


_UNSAFE_NAME = re.compile(r'[^A-Za-z0-9._-]+')


def safe_file_name(name, what: str = 'name') -> str:
    """``name`` (a camera name, a sample token, a scene name read from a data file) as one
    file-name component: runs of characters other than letters, digits, ``.``, ``_`` and
    ``-`` (path separators included) become ``_``; ``''``, ``.`` and ``..`` are refused.

    >>> safe_file_name('../../x')
    '.._.._x'
    """
    text = _UNSAFE_NAME.sub('_', str(name))
    if text.strip('.') == '':
        raise ValueError(f'{what} {name!r} cannot be used as a file name')
    return text


def join_inside(root: str, *parts: str) -> str:
    """``osp.join(root, *parts)``, refused (ValueError naming both) unless the result, with
    symbolic links resolved, stays inside ``root``."""
    path = osp.join(root, *[str(p) for p in parts])
    real_root, real = osp.realpath(root), osp.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise ValueError(f'output path {path!r} leaves the output folder {root!r}')
    return path
