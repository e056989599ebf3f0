"""CarlaSC (MotionSC): ``Cartesian/<Split>/<Town>/cartesian/evaluation/NNNNNN.label``."""
import glob
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from occworld4d.registry import DATASETS
from occworld4d.structures.errors import DataFormatError
from .base import BaseOccSequenceDataset

CARLASC_GRID = (128, 128, 8)
CARLASC_NUM_CLASSES = 23


def read_carlasc_poses(path: str) -> np.ndarray:
    """``poses.txt``: 12 floats a line (row-major 3 x 4) -> float64 (N, 4, 4)."""
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: pose file not found')
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            values = line.split()
            if len(values) != 12:
                raise DataFormatError(f'{path}: line {lineno} has {len(values)} columns, '
                                      'expected 12 (a row-major 3 x 4 pose)')
            try:
                rows.append([float(v) for v in values])
            except ValueError as err:
                raise DataFormatError(f'{path}: line {lineno} is not numeric ({err})') from err
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    if rows:
        poses[:, :3, :4] = np.asarray(rows).reshape(-1, 3, 4)  # (N, 3, 4)
    return poses


def read_binary_grid(path: str, dtype, grid: Sequence[int]) -> np.ndarray:
    """``np.fromfile(path, dtype).reshape(grid)`` with a size check naming the file."""
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: file not found')
    expected = int(np.prod(grid)) * np.dtype(dtype).itemsize
    found = osp.getsize(path)
    if found != expected:
        raise DataFormatError(f'{path}: {found} bytes, expected {expected} '
                              f'({np.dtype(dtype).name} x {tuple(grid)}); truncated or wrong grid')
    return np.fromfile(path, dtype=dtype).reshape(grid)  # (X, Y, Z), C order


@DATASETS.register_module()
class CarlaSCDataset(BaseOccSequenceDataset):
    """Windows of CarlaSC voxel frames (128 x 128 x 8, raw classes 0..22, 0 free).

    Scenes are the town folders of one split; frames are the sorted
    ``evaluation/*.label`` files. ``valid_mask`` = point count (``.bin``) > 0. Poses come
    from ``cartesian/poses.txt`` (one line per evaluation file when the counts match,
    else line ``int(file stem)``). Labels are remapped through ``class_merge`` (default
    DynamicCity's ``carlasc_to_dynamiccity``; ``None`` keeps raw ids).

    Args:
        data_root: folder holding ``Cartesian/``.
        split: ``'Train'``, ``'Val'`` or ``'Test'``.
        towns: town folder names to keep (default all), e.g. ``['Town01_Heavy']``.
    """
    METAINFO = dict(dataset='carlasc', vocabulary='carlasc_raw', free_label=0,
                    voxel_size=[0.4, 0.4, 0.375], pc_range=[-25.6, -25.6, -2.0, 25.6, 25.6, 1.0],
                    grid_size=list(CARLASC_GRID))
    MASK_KEYS = ('valid_mask',)

    def __init__(self, data_root: str, split: str = 'Train', towns: Optional[Sequence[str]] = None,
                 num_frames: int = 16, window_stride: int = 1, frame_step: int = 1,
                 class_merge: Optional[str] = 'carlasc_to_dynamiccity', masks=('valid_mask',),
                 pipeline=(), test_mode: bool = False, skip_corrupt: bool = False,
                 cache_dir: str = None, **kwargs):
        self.split, self.towns = split, None if towns is None else list(towns)
        super().__init__(num_frames=num_frames, window_stride=window_stride,
                         frame_step=frame_step, pipeline=pipeline, masks=masks,
                         class_merge=class_merge, skip_corrupt=skip_corrupt,
                         cache_dir=cache_dir, data_root=data_root, test_mode=test_mode,
                         **kwargs)

    def load_scenes(self) -> Dict[str, List[dict]]:
        split_dir = osp.join(self.data_root, 'Cartesian', self.split)
        if not osp.isdir(split_dir):
            raise DataFormatError(f'{split_dir}: split folder not found (expected '
                                  f'<data_root>/Cartesian/{{Train,Val,Test}}/<Town>/cartesian)')
        towns = sorted(os.listdir(split_dir)) if self.towns is None else self.towns
        scenes = OrderedDict()
        for town in towns:
            try:
                scenes[f'{self.split}/{town}'] = self._load_town(split_dir, town)
            except DataFormatError as err:
                if not self.skip_corrupt:
                    raise
                self._record_skip(f'town {town!r}', err)
        return scenes

    def _load_town(self, split_dir: str, town: str) -> List[dict]:
        seq = osp.join(split_dir, town, 'cartesian')
        ev = osp.join(seq, 'evaluation')
        if not osp.isdir(ev):
            raise DataFormatError(f'{ev}: evaluation folder not found for town {town!r}')
        labels = sorted(glob.glob(osp.join(ev, '*.label')))
        grid = self._read_grid(osp.join(ev, 'params.json'))
        poses = read_carlasc_poses(osp.join(seq, 'poses.txt'))
        records = []
        for i, path in enumerate(labels):
            stem = osp.splitext(osp.basename(path))[0]
            if len(poses) == len(labels):
                pose = poses[i]
            elif stem.isdigit() and int(stem) < len(poses):
                pose = poses[int(stem)]
            else:
                raise DataFormatError(f'{osp.join(seq, "poses.txt")}: {len(poses)} poses '
                                      f'for {len(labels)} evaluation files; no pose for '
                                      f'frame {stem}')
            records.append(dict(frame_id=stem, pose=pose, path=path, grid=grid))
        return records

    @staticmethod
    def _read_grid(path: str) -> tuple:
        if not osp.isfile(path):
            return CARLASC_GRID
        try:
            with open(path) as f:
                params = json.load(f)
            grid = tuple(int(g) for g in params['grid_size'])
        except Exception as err:
            raise DataFormatError(f'{path}: expected JSON with "grid_size" (3 numbers): '
                                  f'{err}') from err
        if len(grid) != 3:
            raise DataFormatError(f'{path}: grid_size has {len(grid)} values, expected 3')
        return grid

    def load_frame(self, record: dict) -> Dict[str, np.ndarray]:
        path = record['path']
        labels = read_binary_grid(path, np.uint32, record['grid'])  # (X, Y, Z)
        if labels.max(initial=0) >= CARLASC_NUM_CLASSES:
            raise DataFormatError(f'{path}: labels up to {labels.max()}, expected 0..'
                                  f'{CARLASC_NUM_CLASSES - 1}')
        out = dict(semantics=labels.astype(np.uint8))
        if 'valid_mask' in self.masks:
            counts = read_binary_grid(path[:-len('.label')] + '.bin', np.float32, record['grid'])
            out['valid_mask'] = counts > 0
        return out
