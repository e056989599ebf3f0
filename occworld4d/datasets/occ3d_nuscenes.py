"""Occ3D-nuScenes: ``gts/<scene>/<token>/labels.npz`` + a temporal info pkl."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List

import numpy as np

from occworld4d.registry import DATASETS
from occworld4d.structures.errors import DataFormatError
from occworld4d.structures.geometry import (VAD_ONEHOT_TO_COMMAND, command_from_heading_lateral,
                                            command_from_vad_onehot, pose_matrix,
                                            vad_command_from_offsets, vad_ego_trajectories)
from occworld4d.structures.nuscenes_infos import info_pose, load_nuscenes_infos
from .base import BaseOccSequenceDataset, check_labels, load_npz_checked

OCC3D_NUSCENES_GRID = (200, 200, 16)
EGO_CONVENTIONS = ('occworld4d', 'reference')


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
        ego_convention: ``'occworld4d'`` (default: the window's ``trajectory`` and one
            ``command``) or ``'reference'``: in addition, per frame, what OccWorld's
            ``nuScenesSceneDatasetLidarTraverse`` feeds its world model (wzzheng/OccWorld @
            1ee7f77, ``dataset/dataset.py``, ``get_meta_data``): ``rel_poses`` (T, 2) =
            the frame's ``gt_ego_fut_trajs[0]``, the step of the LiDAR origin to the next
            keyframe in this frame's LiDAR axes (x right, y forward; zero at a scene's last
            frame), and ``pose_modes`` (T,) = the argmax of its ``pose_mode`` one-hot (the
            reference's key), else ``gt_ego_fut_cmd`` (what ``pose_mode`` was built from,
            OccWorld issue #14): 0 right, 1 left, 2 straight. Infos without those fields get
            them from ``ego2global_*`` @ ``lidar2ego_*`` with VAD's rule
            (``geometry.vad_ego_trajectories`` / ``vad_command_from_offsets``: equal to the
            stored fields on the 81 real frames). In test mode, as the reference's traverse
            dataset (``scene_lens = len - return_len``), the last window of every scene is
            left out (its training dataset draws starts 0 .. len - return_len: all are
            kept). Needs ``frame_step=1`` (steps are keyframe to keyframe).
    """
    METAINFO = dict(dataset='occ3d_nuscenes', vocabulary='occ3d_nuscenes', free_label=17,
                    voxel_size=[0.4, 0.4, 0.4], pc_range=[-40.0, -40.0, -1.0, 40.0, 40.0, 5.4],
                    grid_size=list(OCC3D_NUSCENES_GRID))
    MASK_KEYS = ('mask_lidar', 'mask_camera')

    def __init__(self, data_root: str, ann_file: str, num_frames: int = 16,
                 window_stride: int = 1, frame_step: int = 1, class_merge: str = None,
                 masks=(), pipeline=(), test_mode: bool = False, skip_corrupt: bool = False,
                 cache_dir: str = None, command_source: str = 'auto', command_frame: int = 0,
                 ego_convention: str = 'occworld4d', **kwargs):
        if ego_convention not in EGO_CONVENTIONS:
            raise ValueError(f'Occ3DNuScenesDataset: ego_convention must be one of '
                             f'{EGO_CONVENTIONS}, got {ego_convention!r}')
        if ego_convention == 'reference' and int(frame_step) != 1:
            raise ValueError('Occ3DNuScenesDataset: ego_convention="reference" needs '
                             f'frame_step=1 (its steps go keyframe to keyframe), got '
                             f'{frame_step}')
        self.ego_convention = ego_convention
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
                vad_command=info.get('gt_ego_fut_cmd'),
                **(_reference_ego_fields(info) if self.ego_convention == 'reference' else {}))
                for info in infos]
        return scenes

    def load_data_list(self) -> List[dict]:
        windows = super().load_data_list()
        if self.ego_convention == 'reference' and self.test_mode:  # len - return_len windows
            windows = [w for w in windows
                       if w['start'] + self.window_span < len(self.scenes[w['scene']])]
        return windows

    def load_window(self, info: dict) -> dict:
        results = super().load_window(info)
        if self.ego_convention == 'reference':
            results.update(self.reference_ego(info['scene'], info['start'], self.num_frames))
        return results

    def reference_ego(self, scene: str, start: int, num: int) -> Dict[str, np.ndarray]:
        """``rel_poses`` (num, 2) float32 and ``pose_modes`` (num,) int64 of frames
        ``start .. start + num - 1`` of ``scene`` (see ``ego_convention``)."""
        frames = self.scenes[scene]
        window = frames[start:start + num]
        derived = None
        if any(rec.get('ref_step') is None or rec.get('ref_mode') is None for rec in window):
            derived = _derive_reference_ego(frames, f'{self.ann_file}: scene {scene!r}')
        steps, modes = [], []
        for i, rec in enumerate(window, start):
            step, mode = rec.get('ref_step'), rec.get('ref_mode')
            steps.append(derived[0][i] if step is None else step)
            modes.append(derived[1][i] if mode is None else mode)
        return dict(rel_poses=np.asarray(steps, np.float32).reshape(num, 2),
                    pose_modes=np.asarray(modes, np.int64))

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


def _reference_ego_fields(info: dict) -> dict:
    """What the reference reads of one info frame (``None`` where absent): ``ref_step``
    (``gt_ego_fut_trajs[0]``), ``ref_mode`` (argmax of ``pose_mode``, else of
    ``gt_ego_fut_cmd``) and ``lidar2ego`` (4, 4) for deriving them."""
    where = f'frame {info.get("token")}'
    out = dict(ref_step=None, ref_mode=None, lidar2ego=None)
    trajs = info.get('gt_ego_fut_trajs')
    if trajs is not None:
        trajs = np.asarray(trajs, np.float64)
        if trajs.ndim != 2 or trajs.shape[1] != 2 or not len(trajs):
            raise DataFormatError(f'{where}: gt_ego_fut_trajs has shape {trajs.shape}, '
                                  'expected (steps, 2)')
        out['ref_step'] = trajs[0]
    onehot = info.get('pose_mode', info.get('gt_ego_fut_cmd'))
    if onehot is not None:
        onehot = np.asarray(onehot).reshape(-1)
        if onehot.shape != (3,):
            raise DataFormatError(f'{where}: pose_mode / gt_ego_fut_cmd has shape '
                                  f'{onehot.shape}, expected a (3,) one-hot (right, left, '
                                  'straight)')
        out['ref_mode'] = int(np.argmax(onehot))
    if 'lidar2ego_rotation' in info and 'lidar2ego_translation' in info:
        out['lidar2ego'] = pose_matrix(np.asarray(info['lidar2ego_rotation'], np.float64),
                                       np.asarray(info['lidar2ego_translation'], np.float64))
    return out


def _derive_reference_ego(frames: List[dict], where: str) -> tuple:
    """(steps (N, 2), modes (N,)) of every frame of a scene from its poses (VAD's rule)."""
    missing = [rec['frame_id'] for rec in frames
               if rec.get('pose') is None or rec.get('lidar2ego') is None]
    if missing:
        raise DataFormatError(
            f'{where}: ego_convention="reference" needs gt_ego_fut_trajs and pose_mode / '
            'gt_ego_fut_cmd, or ego2global_* and lidar2ego_* to derive them; frame(s) '
            f'{missing[:5]} have neither')
    lidar = np.stack([rec['pose'] @ rec['lidar2ego'] for rec in frames])  # global_from_lidar
    steps, modes = [], []
    for i in range(len(frames)):
        fut, mask, _ = vad_ego_trajectories(lidar, i)
        steps.append(fut[0])
        modes.append(VAD_ONEHOT_TO_COMMAND.index(vad_command_from_offsets(fut, mask)))
    return np.asarray(steps, np.float64), np.asarray(modes, np.int64)
