"""Occ3D-nuScenes: ``gts/<scene>/<token>/labels.npz`` + a temporal info pkl."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List

import numpy as np

from occworld4d.registry import DATASETS
from occworld4d.structures.errors import DataFormatError
from occworld4d.structures.geometry import command_from_heading_lateral, command_from_vad_onehot
from occworld4d.structures.nuscenes_infos import info_pose, load_nuscenes_infos
from .base import BaseOccSequenceDataset, check_labels, load_npz_checked

OCC3D_NUSCENES_GRID = (200, 200, 16)


def refuse_openocc(path: str, data: Dict[str, np.ndarray]) -> None:
    """An OpenOcc frame (OpenDriveLab's occupancy: free = 16, per-voxel ``flow``) has the
    Occ3D-nuScenes file name and grid, but read as Occ3D its free voxels (16) would become
    vegetation. Refuse it: a ``flow`` array, or a frame without a single Occ3D free voxel (17)
    whose most common label is 16."""
    sem = data['semantics']
    reason = None
    if 'flow' in data:
        reason = "it has a 'flow' array"
    elif sem.size and not (sem == 17).any() and np.issubdtype(sem.dtype, np.integer):
        counts = np.bincount(sem.ravel().clip(0, 255).astype(np.int64), minlength=18)
        if counts.argmax() == 16:
            reason = (f'no voxel is Occ3D free (17) and {counts[16] / sem.size:.0%} are 16, '
                      "OpenOcc's free label")
    if reason:
        raise DataFormatError(
            f'{path}: this looks like an OpenOcc frame ({reason}), not Occ3D-nuScenes '
            '(free = 17, no flow); it is not read as Occ3D, which would turn its free space '
            'into vegetation. No OpenOcc reader exists yet; use Occ3D-nuScenes labels')


@DATASETS.register_module()
class Occ3DNuScenesDataset(BaseOccSequenceDataset):
    """Windows of Occ3D-nuScenes frames (200 x 200 x 16, 0.4 m, classes 0..17, 17 free).

    Args:
        data_root: folder holding ``gts/``.
        ann_file: info pkl in any layout :func:`.nuscenes_infos.load_nuscenes_infos` reads
            (OccWorld scene dict, flat VAD list, our converter, mmdet3d v1.1), relative to
            ``data_root`` or absolute.
        num_frames, window_stride, frame_step, pipeline, masks, class_merge, test_mode,
            skip_corrupt, cache_dir: see :class:`BaseOccSequenceDataset`; masks from
            ``('mask_lidar', 'mask_camera')``.
        command_source: ``'infos'`` (the window's frame ``command_frame``'s
            ``gt_ego_fut_cmd``, VAD one-hot right / left / straight -> RIGHT / LEFT /
            FORWARD), ``'poses'`` (``geometry.command_from_heading_lateral`` on the window
            trajectory) or ``'auto'``
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
                frame_id=str(info['token']),
                pose=info_pose(info, f'{self.ann_file}: frame {info["token"]}'),
                path=osp.join(self.data_root, 'gts', scene, str(info['token']), 'labels.npz'),
                vad_command=info.get('gt_ego_fut_cmd')) for info in infos]
        return scenes

    def load_frame(self, record: dict) -> Dict[str, np.ndarray]:
        path = record['path']
        data = load_npz_checked(path, ('semantics',) + self.masks, shape=OCC3D_NUSCENES_GRID,
                                optional_keys=('flow', ))
        refuse_openocc(path, data)
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
        # real poses: heading / lateral thresholds (DynamicCity's per-step rule reads their
        # jitter as turns); agreement with gt_ego_fut_cmd in docs/reliability.md, section 8
        return command_from_heading_lateral(trajectory)
