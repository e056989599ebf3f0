"""Temporal subsampling of a window."""
import numpy as np

from occworld4d.registry import TRANSFORMS
from occworld4d.structures.geometry import command_from_trajectory, se2_compose_relative
from .formatting import VOXEL_KEYS


@TRANSFORMS.register_module()
class TemporalSubsample:
    """Keep frames ``start, start + step, ...`` (at most ``num_frames`` of them).

    Every time-indexed entry (voxels, masks, poses, trajectory, layout, frame_ids) is
    subsampled; the trajectory is re-expressed relative to the new first frame and, when
    ``recompute_command``, the command is re-derived from it (DynamicCity's rule).
    """

    def __init__(self, step: int = 1, start: int = 0, num_frames: int = None,
                 recompute_command: bool = False):
        if step < 1 or start < 0:
            raise ValueError(f'TemporalSubsample: need step >= 1 and start >= 0, got '
                             f'step={step}, start={start}')
        self.step, self.start, self.num_frames = step, start, num_frames
        self.recompute_command = recompute_command

    def __call__(self, results: dict) -> dict:
        num_t = results['semantics'].shape[0]
        idx = np.arange(self.start, num_t, self.step)[:self.num_frames]
        if len(idx) == 0 or (self.num_frames is not None and len(idx) < self.num_frames):
            raise ValueError(f'TemporalSubsample: window of {num_t} frames cannot give '
                             f'{self.num_frames} frames from start {self.start} step '
                             f'{self.step}')
        for key in VOXEL_KEYS + ('ego_poses', 'layout'):
            if key in results:
                results[key] = results[key][idx]
        if 'frame_ids' in results:
            results['frame_ids'] = [results['frame_ids'][i] for i in idx]
        if 'trajectory' in results:
            traj = np.asarray(results['trajectory'])[idx]
            results['trajectory'] = se2_compose_relative(traj, 0)
            if self.recompute_command:
                results['command'] = command_from_trajectory(results['trajectory'])
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(step={self.step}, start={self.start}, '
                f'num_frames={self.num_frames})')
