"""Sample npz files as the scoring tools read them (``score_samples.py``, the learning
benchmark): folders / globs / paths, ``semantics`` (T, X, Y, Z) class ids and the requested
``command``, ``trajectory`` and ``layout``, with one clear error naming a bad file."""
import glob
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np

from occworld4d.structures.vocabularies import COMMANDS

COMMAND_ALIASES = dict(STOP='STATIC', STRAIGHT='FORWARD')


class SampleFileError(ValueError):
    """A sample file that cannot be scored (the message names the file)."""


def parse_command(value) -> int:
    """'LEFT' / 'left' / 'STRAIGHT' / 'stop' / 2 -> command id (0 STATIC, 1 FORWARD, 2 LEFT,
    3 RIGHT)."""
    if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.isdigit()):
        cid = int(value)
        if not 0 <= cid < len(COMMANDS):
            raise ValueError(f'command id {cid} out of range [0, {len(COMMANDS)})')
        return cid
    key = str(value).strip().upper()
    key = COMMAND_ALIASES.get(key, key)
    if key not in COMMANDS:
        raise ValueError(f'unknown command {value!r}; expected one of {list(COMMANDS)}, '
                         f'{list(COMMAND_ALIASES)} or 0-{len(COMMANDS) - 1}')
    return COMMANDS.index(key)


def sample_files(patterns: Sequence[str]) -> List[str]:
    """npz files named by folders (every ``*.npz`` inside), globs or paths, sorted per
    argument, each file once."""
    files: List[str] = []
    for pat in patterns:
        if osp.isdir(pat):
            found = sorted(glob.glob(osp.join(pat, '*.npz')))
            if not found:
                raise SampleFileError(f'samples: folder {pat!r} holds no .npz file')
        elif any(ch in pat for ch in '*?['):
            found = sorted(glob.glob(pat))
            if not found:
                raise SampleFileError(f'samples: pattern {pat!r} matches no file')
        else:
            if not osp.isfile(pat):
                raise SampleFileError(f'samples: {pat!r} does not exist')
            found = [pat]
        files.extend(f for f in found if f not in files)
    return files


def load_samples(patterns: Sequence[str], num_classes: Optional[int] = None
                 ) -> Tuple[List[str], np.ndarray, List[Optional[int]],
                            List[Optional[np.ndarray]]]:
    """Read sample npz files.

    Args:
        patterns: folders, globs or npz paths (:func:`sample_files`).
        num_classes: if given, class ids must lie in [0, K) (else in [0, 256)).

    Returns:
        (files, semantics uint8 (M, T, X, Y, Z), commands, trajectories): ``commands[i]`` is
        the npz's ``command`` (the requested command, written by ``SaveOccSamplesHook``) or
        None; ``trajectories[i]`` its ``trajectory`` (T, 3) (dx, dy, yaw relative to frame
        0, the condition) or None.

    Raises:
        SampleFileError: naming the file: unreadable, no ``semantics``, not 4-D integer
            ids, ids out of range, or shapes that differ between files.
    """
    files = sample_files(patterns)
    sems, cmds, trajs = [], [], []
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = set(data.files)
                if 'semantics' not in keys:
                    raise SampleFileError(f'{path}: no "semantics" array (found keys '
                                          f'{sorted(keys)}); expected semantics (T, X, Y, Z) '
                                          'class ids as tools/sample.py writes them')
                sem = np.asarray(data['semantics'])
                cmd = data['command'] if 'command' in keys else None
                traj = data['trajectory'] if 'trajectory' in keys else None
        except SampleFileError:
            raise
        except Exception as err:  # not a zip, truncated, pickled objects, ...
            raise SampleFileError(f'{path}: cannot be read as an npz file ({type(err).__name__}'
                                  f': {err})') from err
        if sem.ndim != 4 or not np.issubdtype(sem.dtype, np.integer):
            raise SampleFileError(f'{path}: "semantics" must be integer class ids (T, X, Y, Z),'
                                  f' found {sem.dtype} {sem.shape}')
        limit = 256 if num_classes is None else num_classes  # stored as uint8
        if sem.size and (int(sem.min()) < 0 or int(sem.max()) >= limit):
            raise SampleFileError(f'{path}: class ids span [{int(sem.min())}, {int(sem.max())}]'
                                  f', expected [0, {limit}) (class ids of the vocabulary)')
        if sems and sem.shape != sems[0].shape:
            raise SampleFileError(f'{path}: semantics {sem.shape} != {sems[0].shape} of '
                                  f'{files[0]}; score samples of one shape together')
        if cmd is not None:
            cmd = np.asarray(cmd).reshape(-1)
            if cmd.size != 1:
                raise SampleFileError(f'{path}: "command" must be one id, found shape '
                                      f'{np.asarray(cmd).shape}')
            cmd = parse_command(int(cmd[0]))
        if traj is not None:
            traj = np.asarray(traj, np.float64)
            if traj.shape != (sem.shape[0], 3):
                raise SampleFileError(f'{path}: "trajectory" must be ({sem.shape[0]}, 3) (dx, '
                                      f'dy, yaw per frame), found {traj.shape}')
        sems.append(sem.astype(np.uint8))
        cmds.append(cmd)
        trajs.append(traj)
    return files, np.stack(sems), cmds, trajs


def load_sample_layouts(files: Sequence[str]) -> List[Optional[np.ndarray]]:
    """The ``layout`` array (the requested BEV layout, written by ``SaveOccSamplesHook``)
    of every sample npz, float32 (T, h, w), or None where the file has none."""
    out: List[Optional[np.ndarray]] = []
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as data:
                lay = np.asarray(data['layout'], np.float32) if 'layout' in data.files \
                    else None
        except Exception as err:
            raise SampleFileError(f'{path}: cannot be read as an npz file ({type(err).__name__}'
                                  f': {err})') from err
        if lay is not None and lay.ndim != 3:
            raise SampleFileError(f'{path}: "layout" must be (T, h, w) (UniScene\'s BEV layout '
                                  f'values), found {lay.shape}')
        out.append(lay)
    return out
