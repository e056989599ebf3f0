"""Occ3D-nuScenes: ``gts/<scene>/<token>/labels.npz`` + a temporal info pkl."""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, List

import numpy as np

from occworld4d.registry import DATASETS
from .base import BaseOccSequenceDataset, DataFormatError, check_labels, load_npz_checked
from .geometry import command_from_trajectory, command_from_vad_onehot, pose_matrix

OCC3D_NUSCENES_GRID = (200, 200, 16)


def _scene_name(info: dict) -> str:
    """Scene of a frame: ``scene_name``, else the folder in ``occ_path``, else the token."""
    if info.get('scene_name'):
        return str(info['scene_name'])
    occ_path = str(info.get('occ_path', '')).replace('\\', '/').rstrip('/')
    if occ_path:
        parts = occ_path.split('/')
        if len(parts) >= 2:
            return parts[-2]
    if info.get('scene_token'):
        return str(info['scene_token'])
    raise KeyError('no scene_name, occ_path or scene_token')


def load_nuscenes_infos(path: str) -> Dict[str, List[dict]]:
    """Read a temporal info pkl into ``{scene: [frame info, ...]}`` (time-ordered).

    Accepts OccWorld's scene dict (``data['infos'][scene] -> list``), the flat VAD-style list
    whose frames carry ``scene_token`` (the real example file) and the output of
    ``tools/dataset_converters/create_nuscenes_occ_infos.py`` (a flat list with
    ``scene_name``). Flat lists are grouped by scene and sorted by ``timestamp``.
    mmdetection3d v1.1 info files (``metainfo`` + ``data_list`` with a 4x4 ``ego2global``)
    are accepted too; they carry no scene, so frames without ``scene_token`` /
    ``scene_name`` form one scene named after the file.
    """
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: info file not found')
    try:
        with open(path, 'rb') as f:
            data = pickle.load(f)
    except Exception as err:
        raise DataFormatError(f'{path}: not a readable pickle ({err})') from err
    if isinstance(data, dict) and 'data_list' in data and 'infos' not in data:
        stem = osp.splitext(osp.basename(path))[0]
        data = dict(infos=[dict(info, scene_name=info.get('scene_name') or
                                info.get('scene_token') or stem)
                           for info in data['data_list']])
    if not isinstance(data, dict) or 'infos' not in data:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataFormatError(f'{path}: expected a dict with key "infos" (OccWorld / VAD '
                              f'temporal infos), found {found}')
    infos = data['infos']
    scenes: Dict[str, List[dict]] = OrderedDict()
    if isinstance(infos, dict):
        for scene, frames in infos.items():
            scenes[str(scene)] = list(frames)
    elif isinstance(infos, (list, tuple)):
        for i, info in enumerate(infos):
            try:
                scenes.setdefault(_scene_name(info), []).append(info)
            except KeyError as err:
                raise DataFormatError(f'{path}: infos[{i}] has {err}; cannot tell its scene')
        for scene, frames in scenes.items():
            if all('timestamp' in f for f in frames):
                frames.sort(key=lambda f: f['timestamp'])
    else:
        raise DataFormatError(f'{path}: data["infos"] must be a dict or a list, found '
                              f'{type(infos).__name__}')
    for scene, frames in scenes.items():
        for i, info in enumerate(frames):
            if 'token' not in info:
                raise DataFormatError(f'{path}: frame {i} of scene {scene!r} has no "token"; '
                                      f'keys {sorted(info)[:12]}')
    return scenes


def info_pose(info: dict) -> np.ndarray:
    """World-from-ego (4, 4) of a frame info (quaternion + translation or a 4x4)."""
    if 'ego2global_rotation' in info and 'ego2global_translation' in info:
        return pose_matrix(info['ego2global_rotation'], info['ego2global_translation'])
    for key in ('global_from_ego', 'ego2global'):
        if key in info:
            return np.asarray(info[key], np.float64).reshape(4, 4)
    return None


@DATASETS.register_module()
class Occ3DNuScenesDataset(BaseOccSequenceDataset):
    """Windows of Occ3D-nuScenes frames (200 x 200 x 16, 0.4 m, classes 0..17, 17 free).

    Args:
        data_root: folder holding ``gts/``.
        ann_file: temporal info pkl (see :func:`load_nuscenes_infos`), relative to
            ``data_root`` or absolute.
        num_frames, window_stride, frame_step, pipeline, masks, class_merge, test_mode,
            skip_corrupt, cache_dir: see :class:`BaseOccSequenceDataset`; masks from
            ``('mask_lidar', 'mask_camera')``.
        command_source: ``'infos'`` (the window's frame ``command_frame``'s
            ``gt_ego_fut_cmd``, VAD one-hot right / left / straight -> RIGHT / LEFT /
            FORWARD), ``'poses'`` (DynamicCity's rule on the window trajectory) or ``'auto'``
            (infos when present).
        command_frame: which frame of the window gives the infos command.
    """
    METAINFO = dict(dataset='occ3d_nuscenes', vocabulary='occ3d_nuscenes', free_label=17,
                    voxel_size=[0.4, 0.4, 0.4], pc_range=[-40.0, -40.0, -1.0, 40.0, 40.0, 5.4],
                    grid_size=list(OCC3D_NUSCENES_GRID))
    MASK_KEYS = ('mask_lidar', 'mask_camera')

    def __init__(self, data_root: str, ann_file: str, num_frames: int = 16,
                 window_stride: int = 1, frame_step: int = 1, class_merge: str = None,
                 masks=(), pipeline=(), test_mode: bool = False, skip_corrupt: bool = False,
                 cache_dir: str = None, command_source: str = 'auto', command_frame: int = 0,
                 **kwargs):
        if command_source not in ('auto', 'infos', 'poses'):
            raise ValueError(f'command_source must be auto / infos / poses, got '
                             f'{command_source!r}')
        if not -int(num_frames) <= int(command_frame) < int(num_frames):
            raise ValueError(f'Occ3DNuScenesDataset: command_frame must index a window of '
                             f'num_frames={num_frames} frames, got {command_frame}')
        self.command_source, self.command_frame = command_source, command_frame
        super().__init__(num_frames=num_frames, window_stride=window_stride,
                         frame_step=frame_step, pipeline=pipeline, masks=masks,
                         class_merge=class_merge, skip_corrupt=skip_corrupt,
                         cache_dir=cache_dir, data_root=data_root, ann_file=ann_file,
                         test_mode=test_mode, **kwargs)

    def load_scenes(self) -> Dict[str, List[dict]]:
        scenes = OrderedDict()
        for scene, infos in load_nuscenes_infos(self.ann_file).items():
            scenes[scene] = [dict(
                frame_id=str(info['token']), pose=info_pose(info),
                path=osp.join(self.data_root, 'gts', scene, str(info['token']), 'labels.npz'),
                vad_command=info.get('gt_ego_fut_cmd')) for info in infos]
        return scenes

    def load_frame(self, record: dict) -> Dict[str, np.ndarray]:
        path = record['path']
        data = load_npz_checked(path, ('semantics',) + self.masks, shape=OCC3D_NUSCENES_GRID)
        out = dict(semantics=check_labels(path, 'semantics', data['semantics'], 18))
        for key in self.masks:
            out[key] = data[key].astype(bool)
        return out

    def window_command(self, frames: List[dict], trajectory: np.ndarray) -> int:
        vad = frames[self.command_frame].get('vad_command')
        if self.command_source == 'infos' and vad is None:
            raise DataFormatError(f'{self.ann_file}: command_source="infos" but frame '
                                  f'{frames[self.command_frame]["frame_id"]} has no '
                                  '"gt_ego_fut_cmd"')
        if self.command_source != 'poses' and vad is not None:
            return command_from_vad_onehot(vad)
        return command_from_trajectory(trajectory)
