"""Occ3D-Waymo: ``<split>/<scene:03d>/<frame:03d>[_04].npz`` (+ ego poses)."""
import glob
import json
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from occworld4d.registry import DATASETS
from occworld4d.structures.errors import DataFormatError
from occworld4d.structures.geometry import command_from_heading_lateral, command_from_trajectory
from .base import BaseOccSequenceDataset, load_npz_checked
from .waymo_records import SegmentPoses, read_waymo_poses

RESOLUTIONS = {
    '0.4m': dict(pattern=r'^(\d{3})_04\.npz$', grid=(200, 200, 16), voxel=0.4,
                 pc_range=[-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]),
    '0.1m': dict(pattern=r'^(\d{3})\.npz$', grid=(1600, 1600, 64), voxel=0.1,
                 pc_range=[-80.0, -80.0, -5.0, 80.0, 80.0, 7.8]),
}
COMMAND_RULES = dict(heading_lateral=command_from_heading_lateral,
                     dynamiccity=command_from_trajectory)
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
        pose_source: where ego poses come from. ``None``: the npz ``ego2global`` when
            present (else no trajectory). Otherwise Waymo segment files, v1 ``.tfrecord``
            (``Frame.pose``) or v2 ``vehicle_pose`` ``.parquet``, one per scene, given as
            a dict (or a ``.json`` file; relative paths are relative to it) scene name ->
            segment file, or as a folder of segment files paired by ``scene_map`` or
            ``pose_pairing``. Every scene of the split must get a segment.
        scene_map: with a folder ``pose_source``: dict (or ``.json`` file) scene name ->
            Waymo segment name (``context.name``, e.g.
            ``'10023947602400723454_1120_000_1140_000'``); the folder's file for it is
            ``<name>.parquet``, ``<name>.tfrecord``, ``segment-<name>.tfrecord`` or
            ``segment-<name>_with_camera_labels.tfrecord``
            (exactly one must exist), and the segment name stored in the file must agree.
        pose_pairing: ``'map'`` (default: pairs come from a dict / ``scene_map``; a bare
            folder is refused because Occ3D-Waymo does not publish which segment a scene
            number is, see Tsinghua-MARS-Lab/Occ3D issue #41) or ``'sorted_index'``: scene
            folder ``NNN`` takes the NNN-th segment file of the folder in sorted name order
            (the numbering of mmdetection3d's Waymo converter); only accepted when the
            folder holds one kind of segment file, as many files as the split has scene
            folders, and the folders are exactly ``000 .. N-1``.
        pose_cache_dir: folder for per-segment pose caches (see
            :func:`.waymo_records.read_waymo_poses`); segments are always cached in-process.
        command_rule: the window's driving command from its real poses:
            ``'heading_lateral'`` (default; :func:`.geometry.command_from_heading_lateral`, the
            rule of every real reader, docs/reliability.md section 8) or ``'dynamiccity'``
            (:func:`.geometry.command_from_trajectory`, DynamicCity's per-step rule, which
            reads the heading jitter of real poses as turns; only to reproduce it).

    Frames take poses by the frame number in their file name: ``<frame:03d>`` = k takes the
    segment's k-th frame in timestamp order (v1 records / v2 rows); a frame number past the
    segment's last frame is an error naming both files. When a frame's npz also has
    ``ego2global``, it must agree with the segment pose (a wrong pairing fails there).
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
                 verify_crc: bool = True, scene_map: Union[None, str, dict] = None,
                 pose_pairing: str = 'map', pose_cache_dir: Optional[str] = None,
                 command_rule: str = 'heading_lateral', **kwargs):
        if resolution not in RESOLUTIONS:
            raise ValueError(f'resolution must be one of {list(RESOLUTIONS)}, got {resolution!r}')
        if free_label not in ('auto', 15, 23):
            raise ValueError(f"free_label must be 'auto', 15 or 23, got {free_label!r}")
        if pose_pairing not in ('map', 'sorted_index'):
            raise ValueError(f"pose_pairing must be 'map' or 'sorted_index', got "
                             f'{pose_pairing!r}')
        if command_rule not in COMMAND_RULES:
            raise ValueError(f'command_rule must be one of {sorted(COMMAND_RULES)}, got '
                             f'{command_rule!r}')
        self.command_rule = command_rule
        self.split, self.resolution, self.free = split, resolution, free_label
        self.pose_source, self.verify_crc = pose_source, verify_crc
        self.scene_map, self.pose_pairing = scene_map, pose_pairing
        self.pose_cache_dir = pose_cache_dir
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

    # ---- scene -> segment pairing ---------------------------------------------------------
    @staticmethod
    def _read_map(source: Union[str, dict], what: str) -> Tuple[dict, str]:
        """A dict, or a JSON file's dict, plus the folder relative paths are taken from."""
        if isinstance(source, dict):
            return dict(source), ''
        if not osp.isfile(source):
            raise DataFormatError(f'{source}: {what} file not found')
        try:
            with open(source) as f:
                data = json.load(f)
        except Exception as err:
            raise DataFormatError(f'{source}: not a readable JSON {what} ({err})') from err
        if not isinstance(data, dict):
            raise DataFormatError(f'{source}: expected a JSON object scene -> segment, found '
                                  f'{type(data).__name__}')
        return data, osp.dirname(osp.abspath(source))

    @staticmethod
    def _files_of_segment(folder: str, name: str) -> List[str]:
        names = (f'{name}.parquet', f'{name}.tfrecord', f'segment-{name}.tfrecord',
                 f'segment-{name}_with_camera_labels.tfrecord')
        return [osp.join(folder, n) for n in names if osp.isfile(osp.join(folder, n))]

    def _segment_files(self, scenes: List[str]) -> Dict[str, Tuple[str, str]]:
        """``{scene: (segment file, expected segment name or '')}`` for every scene."""
        source = self.pose_source
        pairs: Dict[str, Tuple[str, str]] = {}
        if isinstance(source, dict) or (isinstance(source, str) and source.endswith('.json')):
            if self.scene_map is not None:
                raise ValueError('Occ3DWaymoDataset: scene_map pairs scenes with the files of a '
                                 'pose_source folder; pose_source is already a scene -> file map')
            mapping, base = self._read_map(source, 'pose_source map')
            for scene in scenes:
                if scene in mapping:
                    path = str(mapping[scene])
                    pairs[scene] = (path if osp.isabs(path) else osp.join(base, path), '')
            where = source if isinstance(source, str) else 'pose_source'
        elif isinstance(source, str) and osp.isdir(source):
            files = sorted(glob.glob(osp.join(source, '*.tfrecord')) +
                           glob.glob(osp.join(source, '*.parquet')))
            if self.scene_map is not None:
                mapping, _ = self._read_map(self.scene_map, 'scene_map')
                for scene in scenes:
                    if scene not in mapping:
                        continue
                    found = self._files_of_segment(source, str(mapping[scene]))
                    if len(found) != 1:
                        raise DataFormatError(
                            f'{source}: scene {scene!r} maps to segment {mapping[scene]!r}; '
                            f'expected exactly one file <name>.parquet / [segment-]<name>'
                            f'[_with_camera_labels].tfrecord, found {len(found)} '
                            f'{[osp.basename(f) for f in found]}')
                    pairs[scene] = (found[0], str(mapping[scene]))
                where = self.scene_map if isinstance(self.scene_map, str) else 'scene_map'
            elif self.pose_pairing == 'sorted_index':
                kinds = sorted({osp.splitext(f)[1] for f in files})
                expected = [f'{i:03d}' for i in range(len(scenes))]
                if len(kinds) != 1 or len(files) != len(scenes) or list(scenes) != expected:
                    raise DataFormatError(
                        f'{source}: pose_pairing="sorted_index" pairs scene NNN with the '
                        f'NNN-th segment file and needs one file kind, as many files as '
                        f'scenes and scenes 000..N-1; found {len(files)} file(s) of kind(s) '
                        f'{kinds} for {len(scenes)} scene folder(s) {list(scenes)[:4]}...; '
                        'give scene_map instead')
                pairs = {scene: (path, '') for scene, path in zip(scenes, files)}
                where = f'{source} (sorted_index)'
            else:
                raise DataFormatError(
                    f'{source}: a folder of {len(files)} segment file(s) does not say which '
                    'scene is which segment (Occ3D-Waymo publishes no scene -> segment map); '
                    'give scene_map={scene: segment name}, a pose_source dict / .json of '
                    'scene -> file, or pose_pairing="sorted_index" if scene NNN is the NNN-th '
                    'file in sorted order')
        else:
            raise DataFormatError(f'{source}: pose_source must be a folder of segment files, '
                                  'a dict or a .json file of scene -> segment file; not found')
        missing = [s for s in scenes if s not in pairs]
        if missing:
            raise DataFormatError(f'{where}: no segment for scene(s) {missing[:8]} of '
                                  f'{len(scenes)} in split {self.split!r}; expected one per scene')
        return pairs

    def _scene_poses(self, scene: str, names: List[str], segment: Tuple[str, str],
                     pattern) -> List[np.ndarray]:
        """Pose of each frame file, matched by its frame number to the segment's frames."""
        path, expected_name = segment
        seg: SegmentPoses = read_waymo_poses(path, verify=self.verify_crc,
                                             cache_dir=self.pose_cache_dir)
        if expected_name and seg.segment and seg.segment != expected_name:
            raise DataFormatError(f'{path}: holds segment {seg.segment!r}, expected '
                                  f'{expected_name!r} for scene {scene!r}')
        poses = []
        for name in names:
            k = int(pattern.match(name).group(1))
            if k >= len(seg.poses):
                raise DataFormatError(
                    f'{osp.join(self.data_root, self.split, scene, name)}: frame {k} has no '
                    f'pose; segment {path} has {len(seg.poses)} frames (0..'
                    f'{len(seg.poses) - 1})')
            poses.append(seg.poses[k])
        return poses

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
            names = sorted((n for n in os.listdir(osp.join(split_dir, scene)) if pattern.match(n)),
                           key=lambda n: int(pattern.match(n).group(1)))
            poses = [None] * len(names)
            if scene in segments:
                poses = self._scene_poses(scene, names, segments[scene], pattern)
            scenes[scene] = [dict(frame_id=pattern.match(n).group(1),
                                  path=osp.join(split_dir, scene, n), pose=pose)
                             for n, pose in zip(names, poses)]
        return scenes

    def window_command(self, frames: List[dict], trajectory: np.ndarray) -> int:
        # real poses: heading / lateral thresholds, as Occ3D-nuScenes (command_source='poses');
        # DynamicCity's per-step rule calls 41 of the 184 16-frame windows of a real v2 segment
        # a turn where the heading never changes by more than 3.5 degrees
        # (tests/test_datasets/test_waymo_command_rule.py)
        return COMMAND_RULES[self.command_rule](trajectory)

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
            seg_pose = record.get('pose')
            if seg_pose is not None and not (
                    np.allclose(pose[:3, 3], seg_pose[:3, 3], atol=0.05) and
                    np.allclose(pose[:3, :3], seg_pose[:3, :3], atol=1e-3)):
                raise DataFormatError(
                    f'{path}: ego2global translation {np.round(pose[:3, 3], 3).tolist()} '
                    f'differs from the segment pose {np.round(seg_pose[:3, 3], 3).tolist()} '
                    f'of frame {record["frame_id"]}; is the scene paired with the right '
                    'segment?')
            out['ego2global'] = pose
        return out
