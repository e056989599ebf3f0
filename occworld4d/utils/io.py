"""Small I/O helpers: the one atomic-write path of the package and the tools; names from data
files made safe as file names (``safe_file_name``, ``join_inside``).

Atomic writes: every file occworld4d writes (samples, caches, info pkls, layouts, images,
JSON, checkpoints through ``occworld4d.utils.compat.atomic_save_checkpoint``) goes through
:func:`atomic_path` (or :func:`atomic_open` / the ``*_atomic`` writers built on it):

1. the data is written to a temporary name beside the destination, in the same folder (so the
   rename never crosses file systems): ``<stem>.tmp<pid><ext>`` (:func:`temporary_name`; the
   extension is kept for writers that add or read one, e.g. ``np.savez``, ffmpeg);
2. the temporary is flushed to disk (``os.fsync``);
3. it is renamed over the destination (``os.replace``, atomic on POSIX), and the folder is
   fsynced so the rename itself survives a power cut;
4. on any exception (``KeyboardInterrupt`` included) the temporary is removed and the
   destination is left untouched: a reader sees the old file or the new one, never half a file.

A process killed outright (``kill -9``) can leave a temporary; :func:`temporary_target` names
what it stood for (the checkpoint hook removes such leftovers, and readers that list a folder
skip them with :func:`is_temporary`).
"""
import contextlib
import json
import os
import os.path as osp
import re
from typing import IO, Iterator, Optional

import numpy as np


def temporary_name(path: str) -> str:
    """The temporary :func:`atomic_path` writes ``path`` through: ``<stem>.tmp<pid><ext>``."""
    root, ext = osp.splitext(str(path))
    return f'{root}.tmp{os.getpid()}{ext}'


# <stem>.tmp<pid><ext> (this module), and <name>.tmp (older releases' checkpoint temporaries)
_TEMPORARY = re.compile(r'^(?P<stem>.+?)\.tmp(?P<pid>\d*)(?P<ext>\.[^.]+)?$')


def temporary_target(name: str) -> Optional[str]:
    """The file name a temporary of an atomic write stands for, else ``None``.

    >>> temporary_target('epoch_2.tmp4711.pth'), temporary_target('epoch_2.pth.tmp')
    ('epoch_2.pth', 'epoch_2.pth')
    >>> temporary_target('last_checkpoint.tmp4711'), temporary_target('epoch_2.pth')
    ('last_checkpoint', None)
    """
    m = _TEMPORARY.match(osp.basename(str(name)))
    if m is None or (not m.group('pid') and m.group('ext')):  # x.tmp.npz: not ours
        return None
    return m.group('stem') + (m.group('ext') or '')


def is_temporary(name: str) -> bool:
    """Whether ``name`` is the temporary of an (interrupted) atomic write."""
    return temporary_target(name) is not None


def fsync_file(path: str) -> None:
    """Flush the data of the file at ``path`` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _atomic(path: str, fsync_tmp: bool) -> Iterator[str]:
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if not osp.isfile(tmp):
            raise FileNotFoundError(f'{path}: the writer did not create the temporary file '
                                    f'{tmp} it was given')
        if fsync_tmp:
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    fsync_dir(directory)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path`` for a writer that takes a file name; on success
    fsync it and rename it to ``path``; on any exception remove it (``path`` untouched).

    The temporary keeps the extension (``x.tmp<pid>.npz``) so that writers which append one
    (``np.savez``, ``np.save``) still write exactly the yielded path.
    """
    with _atomic(path, fsync_tmp=True) as tmp:
        yield tmp


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', **kwargs) -> Iterator[IO]:
    """``open(path, mode)`` through :func:`atomic_path`: the file object of the temporary,
    flushed and fsynced before the rename. ``mode`` must write (``'w'``, ``'wb'``, ...)."""
    if 'w' not in mode and 'x' not in mode:
        raise ValueError(f'atomic_open({path!r}): mode {mode!r} does not write a new file; '
                         "expected 'w' or 'wb' (or 'x' / 'xb')")
    with _atomic(path, fsync_tmp=False) as tmp:
        with open(tmp, mode.replace('x', 'w'), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``last_checkpoint``, JSON, markdown)."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def save_npz_atomic(path: str, compressed: bool = True, **arrays: np.ndarray) -> None:
    """``np.savez[_compressed]`` to ``path`` atomically."""
    with atomic_open(path, 'wb') as f:
        (np.savez_compressed if compressed else np.savez)(f, **arrays)


def save_json_atomic(path: str, obj, indent: int = 2) -> None:
    """``json.dump(obj)`` to ``path`` atomically."""
    with atomic_open(path, 'w') as f:
        json.dump(obj, f, indent=indent)


def real_data_root() -> str:
    """Folder of the shared real samples: ``$OCCWORLD4D_REAL_DATA``, else
    ``<repo>/../shared/data/real``."""
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
