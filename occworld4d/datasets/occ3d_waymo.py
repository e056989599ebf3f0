"""Occ3D-Waymo: ``<split>/<scene:03d>/<frame:03d>[_04].npz`` (+ ego poses)."""
import glob
import json
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Union

import numpy as np

from occworld4d.registry import DATASETS
from .base import BaseOccSequenceDataset, DataFormatError, load_npz_checked
from .waymo_records import read_waymo_poses

RESOLUTIONS = {
    '0.4m': dict(pattern=r'^(\d{3})_04\.npz$', grid=(200, 200, 16), voxel=0.4,
                 pc_range=[-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]),
    '0.1m': dict(pattern=r'^(\d{3})\.npz$', grid=(1600, 1600, 64), voxel=0.1,
                 pc_range=[-80.0, -80.0, -5.0, 80.0, 80.0, 7.8]),
}
WAYMO_MASKS = dict(mask_lidar='origin_voxel_state', mask_camera='final_voxel_state',
                   mask_infov='infov')


@DATASETS.register_module()
class Occ3DWaymoDataset(BaseOccSequenceDataset):
    """Windows of Occ3D-Waymo frames (classes 0..14, free 15; files may use 23 for free).

    Args:
        data_root: folder holding ``training/`` and ``validation/``.
        split: ``'training'`` or ``'validation'``.
        resolution: ``'0.4m'`` (``NNN_04.npz``, 200 x 200 x 16) or ``'0.1m'``
            (``NNN.npz``, 1600 x 1600 x 64).
        free_label: ``'auto'`` (23 and 15 both read as free 15), ``15`` (23 is an error)
            or ``23`` (15 is an error, 23 -> 15).
        class_merge: default DynamicCity's 9-class merge; ``None`` keeps Occ3D ids.
        masks: from ``('mask_lidar', 'mask_camera', 'mask_infov')`` (``origin_voxel_state``,
            ``final_voxel_state``, ``infov``; non-zero = True).
        pose_source: ``None``: the npz ``ego2global`` when present (else no trajectory);
            or a folder / dict giving one Waymo segment file per scene: v1 ``.tfrecord``
            (``Frame.pose``) or v2 ``vehicle_pose`` ``.parquet``. A folder's files sorted
            by name are matched to the sorted scene folders (000, 001, ...); a dict (or a
            JSON file path ending in ``.json``) maps scene name -> file. Frame k of a
            scene takes the segment's k-th pose in time order.
    """
    METAINFO = dict(dataset='occ3d_waymo', vocabulary='occ3d_waymo', free_label=15,
                    voxel_size=[0.4, 0.4, 0.4], pc_range=RESOLUTIONS['0.4m']['pc_range'],
                    grid_size=list(RESOLUTIONS['0.4m']['grid']))
    MASK_KEYS = tuple(WAYMO_MASKS)

    def __init__(self, data_root: str, split: str = 'training', num_frames: int = 16,
                 window_stride: int = 1, frame_step: int = 1, resolution: str = '0.4m',
                 free_label: Union[str, int] = 'auto',
                 class_merge: Optional[str] = 'occ3d_waymo_to_dynamiccity',
                 pose_source: Union[None, str, dict] = None, masks=(), pipeline=(),
                 test_mode: bool = False, skip_corrupt: bool = False, cache_dir: str = None,
                 verify_crc: bool = True, **kwargs):
        if resolution not in RESOLUTIONS:
            raise ValueError(f'resolution must be one of {list(RESOLUTIONS)}, got {resolution!r}')
        if free_label not in ('auto', 15, 23):
            raise ValueError(f"free_label must be 'auto', 15 or 23, got {free_label!r}")
        self.split, self.resolution, self.free = split, resolution, free_label
        self.pose_source, self.verify_crc = pose_source, verify_crc
        res = RESOLUTIONS[resolution]
        self.grid = res['grid']
        metainfo = dict(voxel_size=[res['voxel']] * 3, pc_range=res['pc_range'],
                        grid_size=list(res['grid']))
        metainfo.update(kwargs.pop('metainfo', None) or {})
        super().__init__(num_frames=num_frames, window_stride=window_stride,
                         frame_step=frame_step, pipeline=pipeline, masks=masks,
                         class_merge=class_merge, skip_corrupt=skip_corrupt,
                         cache_dir=cache_dir, data_root=data_root, metainfo=metainfo,
                         test_mode=test_mode, **kwargs)

    def _segment_files(self, scenes: List[str]) -> Dict[str, str]:
        source = self.pose_source
        if isinstance(source, str) and source.endswith('.json'):
            with open(source) as f:
                source = json.load(f)
        if isinstance(source, dict):
            return {s: source[s] for s in scenes if s in source}
        files = sorted(glob.glob(osp.join(source, '*.tfrecord')) +
                       glob.glob(osp.join(source, '*.parquet')))
        if len(files) < len(scenes):
            raise DataFormatError(f'{source}: {len(files)} segment files for {len(scenes)} '
                                  'scenes; expected one .tfrecord / .parquet per scene')
        return dict(zip(scenes, files))

    def load_scenes(self) -> Dict[str, List[dict]]:
        split_dir = osp.join(self.data_root, self.split)
        if not osp.isdir(split_dir):
            raise DataFormatError(f'{split_dir}: split folder not found (expected '
                                  '<data_root>/<split>/<scene:03d>/<frame:03d>[_04].npz)')
        pattern = re.compile(RESOLUTIONS[self.resolution]['pattern'])
        scene_names = sorted(d for d in os.listdir(split_dir)
                             if osp.isdir(osp.join(split_dir, d)))
        segments = self._segment_files(scene_names) if self.pose_source is not None else {}
        scenes = OrderedDict()
        for scene in scene_names:
            names = sorted(n for n in os.listdir(osp.join(split_dir, scene)) if pattern.match(n))
            poses = None
            if scene in segments:
                poses, _ = read_waymo_poses(segments[scene], verify=self.verify_crc)
                if len(poses) < len(names):
                    raise DataFormatError(f'{segments[scene]}: {len(poses)} poses for '
                                          f'{len(names)} frames of scene {scene!r}')
            scenes[scene] = [dict(frame_id=pattern.match(n).group(1),
                                  path=osp.join(split_dir, scene, n),
                                  pose=None if poses is None else poses[i])
                             for i, n in enumerate(names)]
        return scenes

    def load_frame(self, record: dict) -> Dict[str, np.ndarray]:
        path = record['path']
        mask_keys = [WAYMO_MASKS[m] for m in self.masks]
        data = load_npz_checked(path, ['voxel_label'] + mask_keys, shape=self.grid,
                                optional_keys=('ego2global',))
        labels = data['voxel_label']
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataFormatError(f'{path}: voxel_label has dtype {labels.dtype}, expected '
                                  'an integer type')
        allowed = {'auto': (15, 23), 15: (15,), 23: (23,)}[self.free]
        bad = (labels < 0) | ((labels > 14) & ~np.isin(labels, allowed))
        if bad.any():
            raise DataFormatError(f'{path}: voxel_label has id(s) '
                                  f'{np.unique(labels[bad])[:8].tolist()}; expected 0..14 and '
                                  f'free in {list(allowed)} (free_label={self.free!r})')
        sem = labels.astype(np.uint8)
        sem[sem == 23] = 15  # (X, Y, Z)
        out = dict(semantics=sem)
        for mask, key in zip(self.masks, mask_keys):
            out[mask] = data[key] != 0
        if 'ego2global' in data:
            pose = np.asarray(data['ego2global'], np.float64)
            if pose.shape != (4, 4):
                raise DataFormatError(f'{path}: ego2global has shape {pose.shape}, expected '
                                      '(4, 4)')
            out['ego2global'] = pose
        return out
