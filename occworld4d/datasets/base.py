"""Shared machinery of every occupancy reader: scenes -> sliding windows -> sample dicts.

A reader subclasses :class:`BaseOccSequenceDataset` and implements two methods:

* ``load_scenes()`` -> ``{scene: [frame record, ...]}`` in time order, each record a dict
  with at least ``frame_id`` (str) and ``pose`` ((4, 4) world-from-ego or ``None``);
* ``load_frame(record)`` -> ``{'semantics': uint8 (X, Y, Z), <mask>: bool (X, Y, Z), ...}``.

The base class cuts windows of ``num_frames`` frames (``frame_step`` apart, starting every
``window_stride`` frames) that never cross a scene, loads them (from per-frame files or a
window cache), derives trajectory and command from the poses and runs the pipeline on a
plain dict of numpy arrays. The pipeline always ends in ``PackOccInputs`` (appended when
the config leaves it out), so ``dataset[i]`` follows the sample contract.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
import weakref
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger
from tqdm import tqdm

from occworld4d.registry import TRANSFORMS
from occworld4d.structures.errors import DataFormatError
from occworld4d.structures.geometry import (command_from_trajectory, pose_problem,
                                            trajectory_from_poses)
from occworld4d.utils import atomic_path
from .transforms import PackOccInputs, RemapClasses


def load_npz_checked(path: str, keys: Sequence[str], shape: Optional[Sequence[int]] = None,
                     optional_keys: Sequence[str] = ()) -> Dict[str, np.ndarray]:
    """Read ``keys`` (and whichever ``optional_keys`` exist) from an npz, checking shapes.

    Raises:
        DataFormatError: naming ``path`` when it is missing, unreadable, lacks a key, or an
            array's shape differs from ``shape``.
    """
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: file not found')
    try:
        with np.load(path, allow_pickle=False) as data:
            present = set(data.files)
            missing = [k for k in keys if k not in present]
            if missing:
                raise DataFormatError(f'{path}: missing key(s) {missing}; expected {list(keys)}, '
                                      f'found {sorted(present)}')
            out = {k: data[k] for k in list(keys) + [k for k in optional_keys if k in present]}
    except DataFormatError:
        raise
    except Exception as err:  # zipfile / zlib / ValueError for a corrupt archive
        raise DataFormatError(f'{path}: not a readable npz archive ({type(err).__name__}: '
                              f'{err})') from err
    if shape is not None:
        for key in keys:
            if tuple(out[key].shape) != tuple(shape):
                raise DataFormatError(f'{path}: key {key!r} has shape {out[key].shape}, '
                                      f'expected {tuple(shape)}')
    return out


def check_labels(path: str, key: str, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Return ``labels`` as uint8 after checking they lie in [0, num_classes)."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(f'{path}: {key!r} has dtype {labels.dtype}, expected an integer '
                              'type')
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataFormatError(f'{path}: {key!r} labels span [{labels.min()}, {labels.max()}], '
                              f'expected [0, {num_classes - 1}]')
    return labels.astype(np.uint8, copy=False)


class SkipLog:
    """Windows skipped as corrupt, counted across processes.

    Each skip appends one line ``<where>\t<reason>`` to a file with a single ``O_APPEND``
    write, so the dataset in the main process sees the skips of every DataLoader worker
    (fork or spawn start: only the path travels) and of every copy of the dataset
    (``deepcopy``, ``get_subset``, pickling).

    Args:
        path: the log file; default a new temporary file, removed with its dataset.
    """

    def __init__(self, path: Optional[str] = None):
        self.owned_dir = None
        if path is None:
            self.owned_dir = tempfile.mkdtemp(prefix='occworld4d-skipped-')
            path = osp.join(self.owned_dir, 'skipped.tsv')
        self.path = path
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        open(path, 'a').close()

    def add(self, where: str, reason: str) -> None:
        line = f'{where}\t{reason}'.replace('\n', ' ') + '\n'
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def entries(self) -> List[Tuple[str, str]]:
        """``[(where, reason), ...]`` in the order they were recorded."""
        if not osp.isfile(self.path):
            return []
        with open(self.path) as f:
            return [tuple(line.rstrip('\n').split('\t', 1)) for line in f if line.strip()]

    def __len__(self) -> int:
        return len(self.entries())


def skip_summary(name: str, entries: List[Tuple[str, str]]) -> str:
    """One log message: how many windows were skipped and the distinct reasons."""
    reasons = Counter(reason for _, reason in entries)
    lines = [f'{name}: {len(entries)} corrupt window(s) skipped'
             + (f', {len(reasons)} distinct error(s):' if entries else '')]
    lines += [f'  {count} x {reason}' for reason, count in reasons.most_common()]
    return '\n'.join(lines)


def _final_skip_report(name: str, log: SkipLog, pid: int) -> None:
    """At exit (or when the dataset is freed) in the process that made the log."""
    if os.getpid() != pid:
        return
    entries = log.entries()
    if entries:
        MMLogger.get_current_instance().warning(skip_summary(name, entries))
    if log.owned_dir:
        shutil.rmtree(log.owned_dir, ignore_errors=True)


def _scene_file_stem(scene: str) -> str:
    return scene.replace('/', '__').replace('\\', '__')


class BaseOccSequenceDataset(BaseDataset):
    """Sliding windows of semantic-occupancy frames that never cross a scene.

    Args:
        num_frames: frames per window (T).
        window_stride: frames between the starts of consecutive windows.
        frame_step: temporal step inside a window (2 = every other frame).
        pipeline: transforms (config dicts or callables) applied to the window dict.
        masks: which visibility masks to load (names from :attr:`MASK_KEYS`).
        class_merge: name of a merge in :mod:`occworld4d.structures.vocabularies`; when
            given, ``RemapClasses(merge=class_merge)`` runs first in the pipeline.
        skip_corrupt: log and skip windows with an unreadable frame instead of raising (the
            next window is returned instead). Every skip is logged when it happens and
            recorded in a :class:`SkipLog` shared with DataLoader workers, so
            ``num_skipped`` and :meth:`report_skipped` (total + distinct errors) count the
            skips of all workers; the same summary is logged when the run (process) ends.
        skip_log: file of that record (default: a temporary file); give a path to keep it.
        cache_dir: folder written by ``tools/dataset_converters/pack_window_cache.py``;
            when given, voxels are read from its memory-mapped arrays.
        trajectory_frame: ``'ego0'`` (the sample contract: (dx, dy, yaw) in frame 0's ego
            axes) or ``'world'`` (DynamicCity's exact condition: (tx - tx0, ty - ty0) in
            world axes and the absolute world yaw atan2(R10, R00)). The command is the same
            either way (it uses steps only).
        test_mode, data_root, ann_file, indices, lazy_init: as in mmengine's BaseDataset.
    """
    METAINFO: dict = dict(dataset='base', vocabulary=None, free_label=None, voxel_size=None,
                          pc_range=None, grid_size=None)
    MASK_KEYS: tuple = ()

    def __init__(self, num_frames: int = 16, window_stride: int = 1, frame_step: int = 1,
                 pipeline: Sequence = (), masks: Sequence[str] = (),
                 class_merge: Optional[str] = None, skip_corrupt: bool = False,
                 cache_dir: Optional[str] = None, trajectory_frame: str = 'ego0',
                 data_root: str = '', ann_file: str = '',
                 metainfo: Optional[dict] = None, test_mode: bool = False, indices=None,
                 lazy_init: bool = False, max_refetch: int = 100,
                 skip_log: Optional[str] = None):
        for name, value in (('num_frames', num_frames), ('window_stride', window_stride),
                            ('frame_step', frame_step)):
            if int(value) < 1:
                raise ValueError(f'{type(self).__name__}: {name} must be >= 1, got {value}')
        unknown = [m for m in masks if m not in self.MASK_KEYS]
        if unknown:
            raise ValueError(f'{type(self).__name__}: unknown mask(s) {unknown}; this dataset '
                             f'provides {list(self.MASK_KEYS)}')
        if trajectory_frame not in ('ego0', 'world'):
            raise ValueError(f'{type(self).__name__}: trajectory_frame must be "ego0" or '
                             f'"world", got {trajectory_frame!r}')
        self.trajectory_frame = trajectory_frame
        self.num_frames, self.window_stride = int(num_frames), int(window_stride)
        self.frame_step = int(frame_step)
        self.masks = tuple(masks)
        self.skip_corrupt = skip_corrupt
        self.cache_dir = cache_dir
        self.skip_log = SkipLog(skip_log) if skip_corrupt else None
        if self.skip_log is not None:
            weakref.finalize(self, _final_skip_report, type(self).__name__, self.skip_log,
                             os.getpid())
        self.scenes: Dict[str, List[dict]] = OrderedDict()
        self._cache_index = None
        self._cache_arrays: Dict[tuple, np.ndarray] = {}
        self.class_merge = class_merge
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        if class_merge is not None:
            built.insert(0, RemapClasses(merge=class_merge))
        if not built or not isinstance(built[-1], PackOccInputs):
            built.append(PackOccInputs())
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root=data_root,
                         data_prefix=dict(), indices=indices, serialize_data=False,
                         pipeline=built, test_mode=test_mode, lazy_init=lazy_init,
                         max_refetch=max_refetch)

    # ---- to implement in readers -------------------------------------------------------
    def load_scenes(self) -> Dict[str, List[dict]]:
        raise NotImplementedError

    def load_frame(self, record: dict) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def window_command(self, frames: List[dict], trajectory: np.ndarray) -> int:
        """Command of a window; default: DynamicCity's rule on the trajectory."""
        return command_from_trajectory(trajectory)

    # ---- windows -------------------------------------------------------------------------
    @property
    def window_span(self) -> int:
        """Frames from the first to the last frame of a window, inclusive."""
        return (self.num_frames - 1) * self.frame_step + 1

    def load_data_list(self) -> List[dict]:
        self.scenes = OrderedDict(self.load_scenes())
        logger = MMLogger.get_current_instance()
        windows, short = [], []
        for scene, frames in self.scenes.items():
            if len(frames) < self.window_span:
                short.append(scene)
                continue
            for start in range(0, len(frames) - self.window_span + 1, self.window_stride):
                windows.append(dict(scene=scene, start=start))
        if short:
            logger.info(f'{type(self).__name__}: {len(short)} scene(s) shorter than a window '
                        f'of {self.window_span} frames were left out: {short[:5]}')
        return windows

    def window_frames(self, info: dict) -> List[dict]:
        frames = self.scenes[info['scene']]
        return frames[info['start']:info['start'] + self.window_span:self.frame_step]

    # ---- loading -------------------------------------------------------------------------
    def load_window(self, info: dict) -> dict:
        """Load one window as a plain dict of numpy arrays (the pipeline's input)."""
        frames = self.window_frames(info)
        if self.cache_dir is not None:
            arrays = self._load_from_cache(info)
            frame_poses = arrays.pop('ego_poses', [None] * len(frames))
        else:
            per_frame = [self.load_frame(rec) for rec in frames]
            frame_poses = [f.pop('ego2global', None) for f in per_frame]
            arrays = {k: np.stack([f[k] for f in per_frame]) for k in per_frame[0]}
        poses = [rec['pose'] if rec.get('pose') is not None else fp
                 for rec, fp in zip(frames, frame_poses)]
        results = dict(arrays)
        results.update(self.window_conditions(frames, poses))
        meta = self.metainfo
        results.update(dataset=meta['dataset'], scene=info['scene'],
                       frame_ids=[str(rec['frame_id']) for rec in frames],
                       vocabulary=meta['vocabulary'], free_label=meta['free_label'],
                       voxel_size=meta['voxel_size'], pc_range=meta['pc_range'])
        return results

    def window_conditions(self, frames: List[dict], poses: Optional[List] = None) -> dict:
        """``ego_poses`` (T, 4, 4), ``trajectory`` (T, 3) and ``command`` of a window.

        Without a pose for every frame the trajectory is zeros and the command is
        :meth:`window_command` of that zero trajectory (STATIC unless the reader has another
        source, e.g. the VAD command of nuScenes infos).
        """
        poses = [rec.get('pose') for rec in frames] if poses is None else poses
        if any(p is None for p in poses):
            trajectory = np.zeros((len(frames), 3), np.float32)
            return dict(trajectory=trajectory,
                        command=int(self.window_command(frames, trajectory)))
        for rec, pose in zip(frames, poses):  # a NaN / degenerate pose: never a made-up command
            problem = pose_problem(pose)
            if problem:
                raise DataFormatError(f'{rec.get("path", type(self).__name__)}: frame '
                                      f'{rec.get("frame_id", "?")}: ego pose {problem}')
        ego_poses = np.stack(poses).astype(np.float64)  # (T, 4, 4)
        trajectory = trajectory_from_poses(ego_poses)
        command = int(self.window_command(frames, trajectory))
        if self.trajectory_frame == 'world':
            trajectory = np.stack([ego_poses[:, 0, 3] - ego_poses[0, 0, 3],
                                   ego_poses[:, 1, 3] - ego_poses[0, 1, 3],
                                   np.arctan2(ego_poses[:, 1, 0], ego_poses[:, 0, 0])],
                                  axis=1).astype(np.float32)  # (T, 3)
        return dict(ego_poses=ego_poses, trajectory=trajectory, command=command)

    def prepare_data(self, idx: int):
        return self.pipeline(self.load_window(self.get_data_info(idx)))

    def __getitem__(self, idx: int) -> dict:
        """The window after the pipeline, with mmengine's BaseDataset semantics: a pipeline
        returning ``None`` (a filter) refetches a random window in training and is an error
        with ``test_mode=True``. With ``skip_corrupt`` an unreadable window is recorded and
        the next one is tried (in both modes)."""
        if not self._fully_initialized:
            self.full_init()
        cur = idx
        for _ in range(self.max_refetch + 1):
            try:
                data = self.prepare_data(cur)
            except (DataFormatError, FileNotFoundError) as err:
                if not self.skip_corrupt:
                    raise
                self._record_skip(f'window {cur}', err)
                cur = (cur + 1) % len(self)
                continue
            if data is not None:
                return data
            if self.test_mode:
                raise DataFormatError(f'{type(self).__name__}: the pipeline returned None for '
                                      f'window {cur} in test mode (a filtering transform?)')
            cur = self._rand_another()
        raise DataFormatError(f'{type(self).__name__}: {self.max_refetch + 1} windows fetched '
                              f'from index {idx} were corrupt or filtered out')

    @property
    def num_skipped(self) -> int:
        """Windows (or scenes) skipped as corrupt so far, in every worker process."""
        return 0 if self.skip_log is None else len(self.skip_log)

    def _record_skip(self, where: str, err: Exception) -> None:
        self.skip_log.add(where, str(err))
        MMLogger.get_current_instance().warning(
            f'{type(self).__name__}: skipped {where} ({self.num_skipped} skipped so far): '
            f'{err}')

    def report_skipped(self) -> int:
        """Log the skip summary (total and distinct errors, all workers); return the total."""
        entries = [] if self.skip_log is None else self.skip_log.entries()
        MMLogger.get_current_instance().info(skip_summary(type(self).__name__, entries))
        return len(entries)

    # ---- window cache --------------------------------------------------------------------
    def _cache(self) -> dict:
        if self._cache_index is None:
            path = osp.join(self.cache_dir, 'index.json')
            if not osp.isfile(path):
                raise DataFormatError(f'{path}: window-cache index not found (write it with '
                                      'tools/dataset_converters/pack_window_cache.py)')
            with open(path) as f:
                index = json.load(f)
            if index.get('format') != CACHE_FORMAT:
                raise DataFormatError(f'{path}: format {index.get("format")!r}, expected '
                                      f'{CACHE_FORMAT!r}')
            missing = [k for k in ('semantics',) + self.masks if k not in index['keys']]
            if missing:
                raise DataFormatError(f'{path}: cache lacks key(s) {missing}; it holds '
                                      f'{index["keys"]}')
            self._cache_index = index
        return self._cache_index

    def _cache_array(self, scene: str, key: str) -> np.ndarray:
        if (scene, key) not in self._cache_arrays:
            index = self._cache()
            if scene not in index['scenes']:
                raise DataFormatError(f'{self.cache_dir}: scene {scene!r} is not in the cache')
            path = osp.join(self.cache_dir, index['scenes'][scene]['files'][key])
            self._cache_arrays[(scene, key)] = np.load(path, mmap_mode='r')
        return self._cache_arrays[(scene, key)]

    def _load_from_cache(self, info: dict) -> Dict[str, np.ndarray]:
        scene, start = info['scene'], info['start']
        entry = self._cache()['scenes'].get(scene)
        frame_ids = [str(r['frame_id']) for r in self.scenes[scene]]
        if entry is None or entry['frame_ids'] != frame_ids:
            raise DataFormatError(f'{self.cache_dir}: cached frames of scene {scene!r} differ '
                                  'from the dataset\'s; rebuild the cache')
        sl = slice(start, start + self.window_span, self.frame_step)
        out = {'semantics': np.array(self._cache_array(scene, 'semantics')[sl])}  # a copy
        for key in self.masks:
            out[key] = np.array(self._cache_array(scene, key)[sl]).view(bool)  # 0/1 uint8
        if 'ego_poses' in entry['files']:
            out['ego_poses'] = list(np.asarray(self._cache_array(scene, 'ego_poses')[sl]))
        return out


CACHE_FORMAT = 'occworld4d-window-cache-v1'


def pack_window_cache(dataset: BaseOccSequenceDataset, out_dir: str,
                      progress: bool = True) -> dict:
    """Write one memory-mappable ``.npy`` per scene and key, plus ``index.json``.

    Each array is (N, X, Y, Z) uint8 over all N frames of the scene (raw labels, before
    the pipeline), so any window is one contiguous slice. Files are written under a
    temporary name and renamed.

    Returns:
        The index dict that was written.
    """
    dataset.full_init()
    os.makedirs(out_dir, exist_ok=True)
    keys = ['semantics'] + list(dataset.masks)
    index = dict(format=CACHE_FORMAT, dataset=dataset.metainfo['dataset'], keys=keys,
                 scenes={})
    total = sum(len(f) for f in dataset.scenes.values())
    bar = tqdm(total=total, desc='pack window cache', disable=not progress, unit='frame')
    for scene, frames in dataset.scenes.items():  # every scene, whatever the window length
        if not frames:
            continue
        stem = _scene_file_stem(scene)
        files, arrays, tmps = {}, {}, []
        ctxs = []
        for key in keys:
            files[key] = f'{stem}.{key}.npy'
            ctx = atomic_path(osp.join(out_dir, files[key]))
            tmps.append(ctx.__enter__())
            ctxs.append(ctx)
        poses = []
        try:
            for i, rec in enumerate(frames):
                frame = dataset.load_frame(rec)
                poses.append(rec['pose'] if rec.get('pose') is not None
                             else frame.get('ego2global'))
                if i == 0:
                    for key, tmp in zip(keys, tmps):
                        arrays[key] = np.lib.format.open_memmap(
                            tmp, mode='w+', dtype=np.uint8,
                            shape=(len(frames),) + frame[key].shape)  # (N, X, Y, Z)
                for key in keys:
                    arrays[key][i] = frame[key]
                bar.update(1)
            for key in keys:
                arrays[key].flush()
            arrays.clear()
        except BaseException as err:
            for ctx in ctxs:
                ctx.__exit__(type(err), err, None)
            raise
        for ctx in ctxs:
            ctx.__exit__(None, None, None)
        if all(p is not None for p in poses):
            files['ego_poses'] = f'{stem}.ego_poses.npy'
            with atomic_path(osp.join(out_dir, files['ego_poses'])) as tmp:
                np.save(tmp, np.stack(poses).astype(np.float64))  # (N, 4, 4)
        index['scenes'][scene] = dict(frame_ids=[str(r['frame_id']) for r in frames],
                                      files=files)
    bar.close()
    with atomic_path(osp.join(out_dir, 'index.json')) as tmp:
        with open(tmp, 'w') as f:
            json.dump(index, f, indent=1)
    return index
