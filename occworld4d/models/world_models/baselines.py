"""Parameter-free forecasting baselines with :class:`OccWorld`'s ``predict`` contract.

A forecast model is scored by what it adds over the obvious guesses. Both baselines take the
first H frames of a window (``history_frames``) and forecast the next F (``future_frames``):

* :class:`CopyLastForecaster`: every future frame is the last history frame (the world and
  the ego stand still);
* :class:`EgoWarpForecaster`: the last history frame warped into each future frame's ego
  frame by the known future ego poses (the world stands still, the ego moves as it really
  did: an oracle on the ego motion, blind to every other agent).

Both plan the ego by constant-velocity extrapolation: the last history step repeated
(see :func:`constant_velocity_plan`). Shapes: B batch, T = H + F frames, X, Y, Z voxels.

The output is :meth:`OccWorld.predict`'s, so ``OccupancyMetric`` (per-step IoU / mIoU) and
``PlanningMetric`` (L2) score a baseline and the world model in one table: each data sample
gets ``pred_semantics`` (F, X, Y, Z) uint8, ``gt_semantics`` and masks sliced to the F future
frames, ``pred_ego_trajectory`` / ``gt_ego_trajectory`` (F, 2) (metres, cumulative steps from
the last history frame, OccWorld's convention) and ``forecast_seconds``.

Nothing is trained: ``mode='loss'`` raises, and ``tools/test.py CONFIG none`` tests them
without a checkpoint (``configs/occworld/occworld_baseline-*_tiny_synthetic-city.py``).
"""
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModel
from torch import Tensor

from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample

from .occworld import pack_forecast, step_displacements


def constant_velocity_plan(steps: Tensor, history_frames: int, future_frames: int) -> Tensor:
    """Constant-velocity extrapolation of the ego's history, in OccWorld's planning frame.

    Args:
        steps: (B, T, 2) step displacements (:func:`step_displacements`: row t is the step
            from frame t - 1 to t in frame t - 1's ego axes; row 0 is zero).
        history_frames: H; the last history step is row H - 1 (zero when H = 1: no motion
            is known, so the plan stands still).
        future_frames: F.

    Returns:
        (B, F, 2) positions relative to the last history frame: row k = (k + 1) x step H - 1,
        the cumulative sum of the step repeated F times, exactly as OccWorld accumulates its
        predicted steps (heading changes inside the horizon ignored, prediction and ground
        truth alike).
    """
    last = steps[:, history_frames - 1]  # (B, 2)
    k = torch.arange(1, future_frames + 1, dtype=steps.dtype, device=steps.device)  # (F,)
    return last[:, None, :] * k[None, :, None]  # (B, F, 2)


class ForecastBaseline(BaseModel):
    """Base of the parameter-free forecasters: input checks, planning and the output contract.

    Subclasses implement :meth:`forecast_voxels`.

    Args:
        history_frames: H, frames given to a forecast.
        future_frames: F, frames forecast.
        data_preprocessor: config of the data preprocessor (default ``OccDataPreprocessor``).
        init_cfg: mmengine init config (nothing to initialise).
    """

    def __init__(self, history_frames: int = 5, future_frames: int = 6,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='OccDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # build in occworld4d's scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.history_frames, self.future_frames = int(history_frames), int(future_frames)
        if self.history_frames < 1 or self.future_frames < 1:
            raise ValueError(f'{type(self).__name__}: history_frames and future_frames must be '
                             f'>= 1, got {history_frames}, {future_frames}')

    # -------------------------------------------------------------- to implement
    def forecast_voxels(self, voxels: Tensor,
                        data_samples: Optional[List[OccDataSample]]) -> Tensor:
        """voxels (B, T, X, Y, Z) int64 (T = H or H + F; only the first H are read, plus
        sample fields such as poses) -> forecast (B, F, X, Y, Z) int64."""
        raise NotImplementedError

    # -------------------------------------------------------------- modes
    def forward(self, inputs: Dict[str, Tensor], data_samples: Optional[List[OccDataSample]] = None,
                mode: str = 'tensor'):
        voxels = inputs.get('voxels')
        if voxels is None or voxels.ndim != 5:
            found = None if voxels is None else tuple(voxels.shape)
            raise ValueError(f'{type(self).__name__} expects inputs["voxels"] of shape '
                             f'(B, T, X, Y, Z), got {found}')
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            self._check_frames(voxels.shape[1])
            return self.forecast_voxels(voxels, data_samples)
        raise ValueError(f'unknown mode {mode!r}; expected "loss", "predict" or "tensor"')

    def loss(self, inputs, data_samples=None):
        raise RuntimeError(
            f'{type(self).__name__} is a parameter-free forecasting baseline: there is nothing '
            'to train. Evaluate it without a checkpoint: python tools/test.py CONFIG none')

    def _check_frames(self, T: int) -> None:
        H, Fu = self.history_frames, self.future_frames
        if T not in (H, H + Fu):
            raise ValueError(f'{type(self).__name__}: windows must have history_frames={H} or '
                             f'history + future_frames={H + Fu} frames, got {T} (set the test '
                             f'dataset\'s num_frames to {H + Fu})')

    def _steps(self, inputs: Dict[str, Tensor], B: int, T: int, device) -> Tensor:
        """(B, T, 2) ego step displacements of the window (zeros without a trajectory)."""
        traj = inputs.get('trajectory')
        if traj is None:
            return torch.zeros(B, T, 2, device=device)
        if traj.shape[:2] != (B, T) or traj.shape[-1] != 3:
            raise ValueError(f'{type(self).__name__}: inputs["trajectory"] must be (B, T, 3) = '
                             f'{(B, T, 3)}, got {tuple(traj.shape)}')
        return step_displacements(traj.float().to(device))

    @torch.no_grad()
    def predict(self, inputs: Dict[str, Tensor],
                data_samples: Optional[List[OccDataSample]] = None) -> List[OccDataSample]:
        """Forecast F frames and plan F steps from the first H frames of each window.

        Windows of H + F frames are scored against their last F frames (``gt_semantics``
        and masks are sliced to them); windows of H frames only get predictions (the
        ego-warp baseline needs the future poses, so it needs H + F). Output fields as
        :meth:`OccWorld.predict`.
        """
        voxels = inputs['voxels']
        B, T = voxels.shape[:2]
        H, Fu = self.history_frames, self.future_frames
        self._check_frames(T)
        steps = self._steps(inputs, B, T, voxels.device)
        t0 = time.perf_counter()
        pred = self.forecast_voxels(voxels, data_samples).to(torch.uint8)  # (B, F, X, Y, Z)
        pred_xy = constant_velocity_plan(steps, H, Fu).cpu()  # (B, F, 2)
        seconds = (time.perf_counter() - t0) / B
        return pack_forecast(voxels, pred, pred_xy, steps, H, seconds, data_samples)


@MODELS.register_module()
class CopyLastForecaster(ForecastBaseline):
    """Every future frame is the last history frame; plans at constant velocity.

    Args: as :class:`ForecastBaseline` (``history_frames``, ``future_frames``).
    """

    def forecast_voxels(self, voxels: Tensor,
                        data_samples: Optional[List[OccDataSample]] = None) -> Tensor:
        last = voxels[:, self.history_frames - 1]  # (B, X, Y, Z)
        return last[:, None].expand(-1, self.future_frames, -1, -1, -1).clone()  # (B, F, X, Y, Z)


def warp_frame(frame: Tensor, mats: Tensor, origin: Sequence[float],
               voxel_size: Sequence[float], free_label: int) -> Tensor:
    """Resample a semantic voxel grid into another ego frame (a static world).

    Each target voxel takes the class of the source voxel that contains its centre mapped into
    the source frame (nearest neighbour of voxel centres); a target voxel whose centre maps
    outside the source grid (space the source frame did not cover) is ``free_label``.

    Args:
        frame: (X, Y, Z) class ids in the source ego frame.
        mats: (N, 4, 4) rigid transforms **source-from-target** (``p_source = M @
            p_target``, see :func:`source_from_target`), one per output frame.
        origin: (x0, y0, z0) metres, the grid's lower corner in the ego frame (pc_range[:3]).
        voxel_size: (vx, vy, vz) metres.
        free_label: class of voxels that come from outside the grid.

    Returns:
        (N, X, Y, Z) class ids, same dtype as ``frame``.
    """
    X, Y, Z = frame.shape
    dev = frame.device
    o = torch.as_tensor(origin, dtype=torch.float64, device=dev)  # (3,)
    vs = torch.as_tensor(voxel_size, dtype=torch.float64, device=dev)  # (3,)
    dims = torch.tensor([X, Y, Z], device=dev)
    idx = torch.stack(torch.meshgrid(torch.arange(X, device=dev), torch.arange(Y, device=dev),
                                     torch.arange(Z, device=dev), indexing='ij'), -1)
    centres = o + (idx.reshape(-1, 3).double() + 0.5) * vs  # (X*Y*Z, 3) target-frame metres
    flat = frame.reshape(-1)
    out = []
    for mat in mats.to(dev, torch.float64):  # (4, 4) source-from-target
        q = centres @ mat[:3, :3].T + mat[:3, 3]  # (X*Y*Z, 3) in the source frame
        src = torch.floor((q - o) / vs).long()  # (X*Y*Z, 3) source voxel indices
        inside = ((src >= 0) & (src < dims)).all(-1)  # (X*Y*Z,)
        src = torch.minimum(src.clamp(min=0), dims - 1)
        lin = (src[:, 0] * Y + src[:, 1]) * Z + src[:, 2]
        vals = torch.where(inside, flat[lin], torch.full_like(flat[lin], free_label))
        out.append(vals.reshape(X, Y, Z))
    return torch.stack(out)  # (N, X, Y, Z)


def source_from_target(ego_poses: Tensor, source: int, targets: Sequence[int]) -> Tensor:
    """(T, 4, 4) world-from-ego poses -> (len(targets), 4, 4) float64 transforms
    ``inv(P_source) @ P_target`` (target ego coordinates -> source ego coordinates)."""
    poses = ego_poses.to(torch.float64)
    return torch.linalg.inv(poses[source])[None] @ poses[list(targets)]


@MODELS.register_module()
class EgoWarpForecaster(ForecastBaseline):
    """The last history frame warped into each future ego frame by the known poses.

    A static world seen by the moving ego: for future frame t the voxel centres of ego
    frame t are mapped to the last history frame s = H - 1 by ``inv(P_s) @ P_t`` (the full
    rigid 3D transform, so the height / pitch / roll of real poses count too) and take the
    class of the source voxel that contains them (nearest neighbour of voxel centres, no
    interpolation of labels). Voxels whose centre comes from outside the source grid, i.e.
    space the ego had not seen yet (the entering edge), are **free**. Moving agents stay
    where they were at frame s (in world coordinates).

    Poses: the data sample's ``ego_poses`` (T, 4, 4), **world-from-ego** (ego -> world:
    ``p_world = P_t @ p_ego``; ego axes x forward, y left, z up), the convention of every
    reader (``occworld4d/structures/geometry.py``): the nuScenes infos' ``ego2global``
    rotation + translation (``nuscenes_infos.info_pose``), Waymo's ``Frame.pose`` /
    ``vehicle_pose`` (world-from-vehicle) or the npz ``ego2global``, CarlaSC's
    ``poses.txt`` (row-major 3 x 4 rows, read as world-from-ego), and the synthetic city's
    ``pose_from_xyyaw`` (rotation by the heading, translation = the ego's world position).
    The grid is in the ego frame: its lower corner is ``pc_range[:3]`` and the voxel size
    ``voxel_size`` of the sample meta (voxel (i, j, k) has its centre at
    ``pc_range[:3] + (i + 0.5, j + 0.5, k + 0.5) * voxel_size``, as the synthetic city
    renders it). Only windows of H + F frames carry the future poses.

    Args:
        history_frames, future_frames: as :class:`ForecastBaseline`.
        free_label: class of voxels from outside the grid; default the sample meta's
            ``free_label``.
        data_preprocessor, init_cfg: as :class:`ForecastBaseline`.
    """

    def __init__(self, history_frames: int = 5, future_frames: int = 6,
                 free_label: Optional[int] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(history_frames, future_frames, data_preprocessor, init_cfg)
        self.free_label = None if free_label is None else int(free_label)

    def _geometry(self, ds: OccDataSample, i: int, shape: Sequence[int]) -> tuple:
        meta = ds.metainfo
        scene = meta.get('scene', f'sample {i}')
        pc_range, voxel_size = meta.get('pc_range'), meta.get('voxel_size')
        if pc_range is None or voxel_size is None or len(pc_range) != 6 or len(voxel_size) != 3:
            raise ValueError(f'EgoWarpForecaster: data sample {i} ({scene}) needs meta '
                             f'pc_range (6,) and voxel_size (3,), got {pc_range!r} / '
                             f'{voxel_size!r}')
        extent = [(float(pc_range[a + 3]) - float(pc_range[a])) / float(voxel_size[a])
                  for a in range(3)]
        if any(abs(e - n) > 1e-3 for e, n in zip(extent, shape)):
            raise ValueError(f'EgoWarpForecaster: data sample {i} ({scene}): pc_range '
                             f'{list(pc_range)} / voxel_size {list(voxel_size)} give a grid of '
                             f'{[round(e, 3) for e in extent]} voxels, the voxels are '
                             f'{list(shape)}')
        free = self.free_label if self.free_label is not None else meta.get('free_label')
        if free is None:
            raise ValueError(f'EgoWarpForecaster: data sample {i} ({scene}) has no free_label '
                             'meta; set model.free_label')
        return [float(v) for v in pc_range[:3]], [float(v) for v in voxel_size], int(free)

    def forecast_voxels(self, voxels: Tensor,
                        data_samples: Optional[List[OccDataSample]] = None) -> Tensor:
        B, T = voxels.shape[:2]
        H, Fu = self.history_frames, self.future_frames
        if T != H + Fu or data_samples is None or len(data_samples) != B:
            raise ValueError(f'EgoWarpForecaster warps by the future ego poses: it needs windows '
                             f'of history + future_frames={H + Fu} frames (got {T}) and one data '
                             f'sample with ego_poses per window')
        out = []
        for i, ds in enumerate(data_samples):
            poses = ds.get('ego_poses')
            if poses is None or tuple(poses.shape) != (T, 4, 4):
                scene = ds.metainfo.get('scene', f'sample {i}')
                raise ValueError(f'EgoWarpForecaster: data sample {i} ({scene}) needs '
                                 f'ego_poses of shape ({T}, 4, 4) (world-from-ego), got '
                                 f'{None if poses is None else tuple(poses.shape)}; the '
                                 'dataset has no poses for this window')
            origin, vs, free = self._geometry(ds, i, voxels.shape[2:])
            mats = source_from_target(torch.as_tensor(poses), H - 1, range(H, H + Fu))
            out.append(warp_frame(voxels[i, H - 1], mats, origin, vs, free))  # (F, X, Y, Z)
        return torch.stack(out)  # (B, F, X, Y, Z)
