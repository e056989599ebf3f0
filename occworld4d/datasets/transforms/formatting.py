"""Turn the pipeline's dict of numpy arrays into the sample contract."""
from typing import Sequence

import numpy as np
import torch

from occworld4d.registry import TRANSFORMS
from occworld4d.structures import OccDataSample

VOXEL_KEYS = ('semantics', 'mask_lidar', 'mask_camera', 'mask_infov', 'valid_mask')
MASK_KEYS = VOXEL_KEYS[1:]
META_KEYS = ('dataset', 'scene', 'frame_ids', 'vocabulary', 'free_label', 'voxel_size',
             'pc_range')


@TRANSFORMS.register_module()
class PackOccInputs:
    """Pack a window dict into ``dict(inputs=..., data_samples=OccDataSample)``.

    Input keys: ``semantics`` uint8 (T, X, Y, Z) (required); optional masks bool
    (T, X, Y, Z), ``ego_poses`` (T, 4, 4), ``trajectory`` (T, 3), ``command`` (int),
    ``layout`` (T, h, w), ``rel_poses`` (T, 2) / ``pose_modes`` (T,) (the OccWorld
    reference's per-frame ego inputs, ``Occ3DNuScenesDataset(ego_convention='reference')``)
    and the meta keys.

    Output: ``inputs = dict(voxels=uint8 (T, X, Y, Z), trajectory=float32 (T, 3),
    command=int64 (), [layout=float32 (T, h, w)], [rel_poses=float32 (T, 2),
    pose_modes=int64 (T,)])``; the data sample holds ``gt_semantics`` (the same tensor as
    ``voxels``), masks, poses, trajectory, command, layout, rel_poses, pose_modes and the
    metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        if 'semantics' not in results:
            raise KeyError(f'PackOccInputs: the window dict has no "semantics" key; found '
                           f'{sorted(results)}')
        sem = np.ascontiguousarray(results['semantics'])
        if sem.ndim != 4 or sem.dtype != np.uint8:
            raise ValueError(f'PackOccInputs: semantics must be uint8 (T, X, Y, Z), found '
                             f'{sem.dtype} {sem.shape} (scene {results.get("scene")})')
        voxels = torch.from_numpy(sem)
        num_t = sem.shape[0]
        traj = np.asarray(results.get('trajectory', np.zeros((num_t, 3))), np.float32)
        if traj.shape != (num_t, 3):
            raise ValueError(f'PackOccInputs: trajectory must be ({num_t}, 3), found '
                             f'{traj.shape}')
        trajectory = torch.from_numpy(np.ascontiguousarray(traj))
        command = torch.tensor(int(results.get('command', 0)), dtype=torch.int64)
        inputs = dict(voxels=voxels, trajectory=trajectory, command=command)
        sample = OccDataSample(metainfo={k: results[k] for k in self.meta_keys if k in results})
        sample.gt_semantics = voxels
        sample.trajectory = trajectory
        sample.command = command
        for key in MASK_KEYS:
            if key in results:
                sample.set_field(torch.from_numpy(np.ascontiguousarray(results[key], bool)), key)
        if 'ego_poses' in results:
            sample.ego_poses = torch.from_numpy(np.asarray(results['ego_poses'], np.float64))
        if 'layout' in results:
            layout = torch.from_numpy(np.ascontiguousarray(results['layout'], np.float32))
            inputs['layout'] = layout
            sample.layout = layout
        for key, dtype, shape in (('rel_poses', np.float32, (num_t, 2)),
                                  ('pose_modes', np.int64, (num_t,))):
            if key in results:
                value = np.asarray(results[key], dtype)
                if value.shape != shape:
                    raise ValueError(f'PackOccInputs: {key} must be {shape}, found '
                                     f'{value.shape} (scene {results.get("scene")})')
                inputs[key] = torch.from_numpy(np.ascontiguousarray(value))
                sample.set_field(inputs[key], key)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self):
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'


LATENT_INPUT_KEYS = ('latent', 'trajectory', 'command', 'layout')


def _to_tensor(value):
    return value if isinstance(value, torch.Tensor) else \
        torch.from_numpy(np.ascontiguousarray(value))


@TRANSFORMS.register_module()
class PackLatentInputs:
    """Pack a latent-cache window dict (see ``LatentCacheDataset``) into the sample contract.

    Input keys: ``latent`` (array, or dict name -> array), ``trajectory`` (T, 3),
    ``command`` (int), optional ``layout`` (T, h, w); every other key is metadata.

    Output: ``inputs = dict(latent=tensor or dict of tensors, trajectory=float32 (T, 3),
    command=int64 (), [layout=float32 (T, h, w)])``; the data sample holds trajectory,
    command, layout and the metadata as metainfo.
    """

    def __call__(self, results: dict) -> dict:
        missing = [k for k in LATENT_INPUT_KEYS[:3] if k not in results]
        if missing:
            raise KeyError(f'PackLatentInputs: the window dict lacks {missing}; found '
                           f'{sorted(results)}')
        latent = results['latent']
        latent = {k: _to_tensor(v) for k, v in latent.items()} if isinstance(latent, dict) \
            else _to_tensor(latent)
        traj = np.asarray(results['trajectory'], np.float32)
        if traj.ndim != 2 or traj.shape[1] != 3:
            raise ValueError(f'PackLatentInputs: trajectory must be (T, 3), found {traj.shape} '
                             f'(scene {results.get("scene")})')
        inputs = dict(latent=latent, trajectory=torch.from_numpy(np.ascontiguousarray(traj)),
                      command=torch.tensor(int(results['command']), dtype=torch.int64))
        if results.get('layout') is not None:
            inputs['layout'] = _to_tensor(np.asarray(results['layout'], np.float32))
        sample = OccDataSample(metainfo={k: v for k, v in results.items()
                                         if k not in LATENT_INPUT_KEYS})
        sample.trajectory, sample.command = inputs['trajectory'], inputs['command']
        if 'layout' in inputs:
            sample.layout = inputs['layout']
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self):
        return f'{type(self).__name__}()'
