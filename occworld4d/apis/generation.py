"""Generation applications of a latent-diffusion scene generator (DynamicCity's list).

Every function takes a :class:`~occworld4d.models.generators.LatentDiffusion` (eval mode) and
returns semantics as uint8 tensors (N, T, X, Y, Z) on the CPU. ``sample_kwargs`` go to
``model.sample`` (sampler, num_steps, guidance_scale, eta, generator, resample_jumps, ...).

Keeping given voxels EXACTLY (inpainting, outpainting, continuation, single frame): the
latent sampler keeps the latent cells that only influence voxels outside the region to
generate (``known`` / ``known_mask``, RePaint-style replacement at every step) so the new part
is generated in the context of the given part; the decoded scene is then pasted with the given
voxels outside the region, so those are bit-identical to the input.

Long sequences (up to 128 frames and more) chain T-frame windows with an overlap of ``o``
frames (stride T - o). Window k+1 (1) is conditioned on window k's HexPlane through the
``hexplane`` condition (the reference's chaining), (2) keeps as known the latent time-plane
rows that describe only the first ``o`` frames, taken from the encoding of window k's last
``o`` frames, and (3) gets those ``o`` frames pasted back exactly. Its first frames therefore
ARE the previous window's last frames and the frames after them are denoised jointly with
them, so there is no jump at the join; the overlap is output once.

Latent adapters. The functions only use the adapter's generic interface: ``voxel_shape``,
``region_mask(region)`` (latent cells a voxel box influences; True = regenerate) and, for
single frame, ``plane_mask`` or ``frame_mask``; the ``hexplane`` condition is used when the
model has it. Two adapters exist:

* ``PaddedRollout`` (DynamicCity, the HexPlane canvas): as described above.
* ``GridLatentAdapter`` (OccSora's 4D token grid, UniScene's KL-VAE latent; (C, t, h, w) over
  a (T, X, Y, Z) window with strides st, sx, sy): a cell is regenerated when its stride block
  (grown by the adapter's ``halo`` cells) meets the box, so inpainting / outpainting keep the
  cells away from the box. Continuation / long sequences: no ``hexplane`` condition; the kept
  cells are the latent time slices over the overlap frames only (with the time halo: the
  overlap should be at least (1 + halo_t) * st frames, e.g. 16 for OccSora's st = 8; a
  shorter overlap keeps no cell and the window is sampled afresh, its first frames pasted).
  Single frame: the time slice(s) over frame 0 of the static window (frame 0 held still) are
  known; with a temporal stride of 1 (UniScene) that is exactly frame 0's cells, with st > 1
  (OccSora) the first st frames start from the scene at rest and the rest is generated in
  that context (RePaint resampling with ``resample_jumps`` > 1 harmonizes the join). In every
  task the given voxels are pasted back, so they are kept exactly.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from torch import Tensor

from occworld4d.datasets.transforms.formatting import PackOccInputs
from occworld4d.models.tokenizers.rollout import SPATIAL_PLANES
from occworld4d.registry import TRANSFORMS

COMMANDS = dict(STATIC=0, FORWARD=1, LEFT=2, RIGHT=3)
TRAJECTORY_PRESETS = ('straight', 'left', 'right', 'stop', 'accelerate')


# ------------------------------------------------------------------ conditions
def parse_command(command: Union[int, str]) -> int:
    """'LEFT' / 'left' / 2 -> 2 (0 STATIC, 1 FORWARD, 2 LEFT, 3 RIGHT)."""
    if isinstance(command, str) and not command.isdigit():
        key = command.upper()
        if key not in COMMANDS:
            raise ValueError(f'unknown command {command!r}; expected one of {list(COMMANDS)} '
                             'or 0-3')
        return COMMANDS[key]
    value = int(command)
    if not 0 <= value < 4:
        raise ValueError(f'command id {value} out of range [0, 4)')
    return value


def trajectory_preset(name: str, num_frames: int, speed: float = 1.0,
                      turn_rate: float = 0.08) -> np.ndarray:
    """A named ego trajectory (T, 3) = (dx, dy, yaw) relative to frame 0 (metres, radians).

    Args:
        name: 'straight' (constant ``speed`` m/frame), 'left' / 'right' (constant speed on an
            arc turning ``turn_rate`` rad/frame, left = +yaw), 'stop' (standing still),
            'accelerate' (from rest, reaching ``speed`` at the last frame).
        num_frames: T.
    """
    t = np.arange(num_frames, dtype=np.float64)
    if name == 'straight':
        return np.stack([speed * t, 0 * t, 0 * t], 1).astype(np.float32)
    if name == 'stop':
        return np.zeros((num_frames, 3), np.float32)
    if name == 'accelerate':
        a = speed / max(num_frames - 1, 1)
        return np.stack([0.5 * a * t ** 2, 0 * t, 0 * t], 1).astype(np.float32)
    if name in ('left', 'right'):
        w = turn_rate if name == 'left' else -turn_rate
        yaw = w * t
        r = speed / w  # signed radius; x forward, y left
        return np.stack([r * np.sin(yaw), r * (1 - np.cos(yaw)), yaw], 1).astype(np.float32)
    raise ValueError(f'unknown trajectory preset {name!r}; expected a file or one of '
                     f'{TRAJECTORY_PRESETS}')


def load_trajectory(spec: Union[str, np.ndarray], num_frames: int) -> np.ndarray:
    """A trajectory (T, 3) from an array, a .npy / .txt file, or a preset name."""
    if isinstance(spec, np.ndarray):
        traj, where = spec, 'the given array'
    elif osp.isfile(spec):
        traj = np.load(spec) if spec.endswith('.npy') else np.loadtxt(spec, ndmin=2)
        where = spec
    else:
        return trajectory_preset(spec, num_frames)
    traj = np.asarray(traj, dtype=np.float32)
    if traj.shape != (num_frames, 3):
        raise ValueError(f'trajectory from {where} has shape {traj.shape}; expected '
                         f'({num_frames}, 3) = (dx, dy, yaw) per frame')
    return traj


def _cond(model, num_samples: int, command=None, trajectory=None, layout=None,
          hexplane: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Batch the given conditions for ``num_samples`` samples (missing ones are left out)."""
    cond = {}
    if command is not None:
        cond['command'] = torch.full((num_samples,), parse_command(command), dtype=torch.long)
    if trajectory is not None:
        traj = torch.as_tensor(np.asarray(trajectory), dtype=torch.float32)
        cond['trajectory'] = traj.expand(num_samples, *traj.shape[-2:])
    if layout is not None:
        lay = torch.as_tensor(np.asarray(layout), dtype=torch.float32)
        if lay.ndim != 3:
            raise ValueError(f'layout must be (T, h, w); got {tuple(lay.shape)}')
        cond['layout'] = lay.expand(num_samples, *lay.shape)
    if hexplane is not None:
        cond['hexplane'] = hexplane.expand(num_samples, *hexplane.shape[1:])
    missing = [k for k in cond if k not in model.condition_keys]
    if missing:
        raise ValueError(f'this model was not trained with the condition(s) {missing}; it '
                         f'knows {model.condition_keys}')
    return cond


def _voxels(voxels, name: str = 'voxels') -> Tensor:
    v = torch.as_tensor(np.asarray(voxels))
    if v.ndim != 4:
        raise ValueError(f'{name} must be (T, X, Y, Z) class ids; got shape {tuple(v.shape)}')
    return v.long()


def _decode(model, x0: Tensor) -> Tensor:
    """Latents (N, C, ...) -> semantics (N, T, X, Y, Z) uint8 on the CPU."""
    with torch.no_grad():
        return model.decode_latent(x0).argmax(1).to(torch.uint8).cpu()


def _region_known_mask(model, region: Sequence[int]) -> Tensor:
    adapter = model.adapter
    if adapter is None or not hasattr(adapter, 'region_mask'):
        raise NotImplementedError('region-based inpainting needs a latent adapter with '
                                  'region_mask() (e.g. PaddedRollout with voxel_shape, '
                                  'GridLatentAdapter)')
    return ~adapter.region_mask(region, model.device)[None, None]  # (1, 1, ...) True = keep


def _batch(latent: Tensor, num_samples: int) -> Tensor:
    """(1, C, ...) -> (num_samples, C, ...) (a view)."""
    return latent.expand(num_samples, *latent.shape[1:])


def _box_mask(shape: Sequence[int], region: Sequence[int]) -> Tensor:
    """Bool (T, X, Y, Z): True inside the box (x0, x1, y0, y1, z0, z1[, t0, t1])."""
    T = shape[0]
    t0, t1 = (region[6], region[7]) if len(region) == 8 else (0, T)
    box = torch.zeros(tuple(shape), dtype=torch.bool)
    box[t0:t1, region[0]:region[1], region[2]:region[3], region[4]:region[5]] = True
    return box


# -------------------------------------------------------------------- tasks
@torch.no_grad()
def generate(model, num_samples: int = 1, command=None, trajectory=None, layout=None,
             hexplane: Optional[Tensor] = None, **sample_kwargs) -> Tensor:
    """Unconditional, command-, trajectory-, layout- or HexPlane-conditioned generation.

    Args:
        command: 0-3 or a name (STATIC, FORWARD, LEFT, RIGHT).
        trajectory: (T, 3) array (see :func:`load_trajectory`).
        layout: (T, h, w) BEV layout maps.
        hexplane: (1, C, ...) previous-window latent (as from ``model.encode_latent``).

    Returns:
        uint8 (N, T, X, Y, Z).
    """
    cond = _cond(model, num_samples, command, trajectory, layout, hexplane)
    return _decode(model, model.sample(num_samples, cond=cond, **sample_kwargs))


@torch.no_grad()
def inpaint(model, voxels, region: Sequence[int], num_samples: int = 1, cond: Optional[dict] = None,
            **sample_kwargs) -> Tensor:
    """Regenerate a voxel box of a given scene and keep everything else exactly.

    Args:
        voxels: (T, X, Y, Z) the given scene.
        region: (x0, x1, y0, y1, z0, z1[, t0, t1]) half-open box to regenerate.
        cond: optional extra conditions (already batched).

    Returns:
        uint8 (N, T, X, Y, Z), equal to ``voxels`` outside the box.
    """
    v = _voxels(voxels)
    known_mask = _region_known_mask(model, region)  # validates the region first
    box = _box_mask(v.shape, region)
    known = _batch(model.encode_latent(v[None].to(model.device)), num_samples)
    x0 = model.sample(num_samples, cond=cond, known=known, known_mask=known_mask, **sample_kwargs)
    out = _decode(model, x0)
    return torch.where(box, out, v.to(torch.uint8))


@torch.no_grad()
def outpaint(model, voxels, shift: Tuple[int, int], free_label: int = 0, num_samples: int = 1,
             cond: Optional[dict] = None, **sample_kwargs) -> Tensor:
    """Extend a scene spatially by (dx, dy) voxels (sign = side) and keep it exactly.

    The model generates windows of the scene's own size. The extended canvas
    (X + |dx|) x (Y + |dy|) is filled window by window: the window shifted by (dx, 0), then
    the one shifted by (0, dy), then (with both shifts) the diagonal one. Each window keeps as
    known every voxel already on the canvas (the given scene and the earlier windows' output:
    the latent cells that influence only those voxels are kept, RePaint-style, and the voxels
    are pasted back), so the diagonal window is generated in the context of an L-shaped
    neighbourhood and the whole extended canvas is generated, corners included.

    Args:
        voxels: (T, X, Y, Z) the given scene.
        shift: (dx, dy), each |d| < the scene size along that axis, not both 0.
        free_label: placeholder label of the not-yet-generated voxels fed to the encoder.
        cond: optional conditions (already batched, as for :func:`inpaint`), used by every
            window.

    Returns:
        uint8 (N, T, X + |dx|, Y + |dy|, Z); the given scene sits at offset
        (max(-dx, 0), max(-dy, 0)) unchanged.
    """
    v = _voxels(voxels)
    T, X, Y, Z = v.shape
    expected = getattr(model.adapter, 'voxel_shape', None)
    if expected is None:
        raise NotImplementedError('outpainting needs a latent adapter with voxel_shape '
                                  '(T, X, Y, Z), e.g. PaddedRollout or GridLatentAdapter')
    if tuple(v.shape) != tuple(expected):
        raise ValueError(f'outpaint: the scene has shape {tuple(v.shape)}; this model '
                         f'generates windows of (T, X, Y, Z) = {tuple(expected)}')
    dx, dy = int(shift[0]), int(shift[1])
    if not (abs(dx) < X and abs(dy) < Y) or (dx == 0 and dy == 0):
        raise ValueError(f'outpaint shift {tuple(shift)} must be nonzero and smaller than the '
                         f'scene ({X}, {Y})')
    ox, oy = max(-dx, 0), max(-dy, 0)  # offset of the given scene on the canvas
    canvas = torch.full((num_samples, T, X + abs(dx), Y + abs(dy), Z), free_label,
                        dtype=torch.uint8)  # (N, T, X', Y', Z)
    filled = torch.zeros(X + abs(dx), Y + abs(dy), dtype=torch.bool)  # BEV cells on the canvas
    canvas[:, :, ox:ox + X, oy:oy + Y] = v.to(torch.uint8)
    filled[ox:ox + X, oy:oy + Y] = True
    origins = [(ox + dx, oy)] if dx else []
    if dy:
        origins.append((ox, oy + dy))
    if dx and dy:
        origins.append((ox + dx, oy + dy))  # last: its free part is the far corner
    for wx, wy in origins:
        _outpaint_window(model, canvas, filled, (wx, wy), cond, sample_kwargs)
    return canvas


def _outpaint_window(model, canvas: Tensor, filled: Tensor, origin: Tuple[int, int],
                     cond: Optional[dict], sample_kwargs: dict) -> None:
    """Generate the not-yet-filled part of the window at ``origin`` of ``canvas`` in place.

    Args:
        canvas: uint8 (N, T, X', Y', Z), the extended scene so far.
        filled: bool (X', Y'), True where ``canvas`` already holds voxels to keep.
        origin: (x, y) of the window (the model's voxel size) on the canvas.
    """
    N, T, _, _, Z = canvas.shape
    X, Y = model.adapter.voxel_shape[1:3]
    wx, wy = origin
    win = canvas[:, :, wx:wx + X, wy:wy + Y]  # (N, T, X, Y, Z) view
    keep = filled[wx:wx + X, wy:wy + Y]  # (X, Y)
    free = ~keep
    xs, ys = free.any(1).nonzero()[:, 0], free.any(0).nonzero()[:, 0]
    box = (int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1)
    if int(free.sum()) != (box[1] - box[0]) * (box[3] - box[2]):  # outpaint's order avoids it
        raise RuntimeError(f'outpaint window at {origin}: the part to generate is not a box')
    known_mask = _region_known_mask(model, (*box, 0, Z))  # (1, 1, S, S) True = keep
    known = model.encode_latent(win.long().to(model.device))  # (N, C, ...)
    x0 = model.sample(N, cond=cond, known=known, known_mask=known_mask, **sample_kwargs)
    new = _decode(model, x0)  # (N, T, X, Y, Z)
    win.copy_(torch.where(keep[None, None, :, :, None], win, new))
    filled[wx:wx + X, wy:wy + Y] = True


@torch.no_grad()
def generate_long(model, num_frames: int, first_window=None, overlap: int = 4,
                  num_samples: int = 1, command=None, trajectory=None, layout=None,
                  **sample_kwargs) -> Tensor:
    """A sequence of ``num_frames`` frames by chaining overlapping windows (see module doc).

    Args:
        num_frames: total frames (e.g. 128).
        first_window: (T, X, Y, Z) given first window (continuation); generated when None.
        overlap: frames shared by consecutive windows (a multiple of the latent time
            downsampling keeps whole latent rows known; 0 = HexPlane condition only).
        command, trajectory, layout: per-window conditions applied to every window.

    Returns:
        uint8 (N, num_frames, X, Y, Z); starts with ``first_window`` exactly when given.
    """
    if first_window is None:
        window = generate(model, num_samples, command, trajectory, layout, **sample_kwargs)
    else:
        window = _voxels(first_window, 'first_window').to(torch.uint8)[None].repeat(
            num_samples, 1, 1, 1, 1)
    T, X, Y, Z = window.shape[1:]
    if not 0 <= overlap < T:
        raise ValueError(f'overlap must be in [0, {T}); got {overlap}')
    pieces, total = [window], T
    use_hex = 'hexplane' in model.condition_keys
    while total < num_frames:
        prev = window.long().to(model.device)  # (N, T, X, Y, Z)
        cond = _cond(model, num_samples, command, trajectory, layout)
        if use_hex:
            cond['hexplane'] = model.encode_latent(prev)
        known = known_mask = None
        if overlap:
            # Seed window: the last `overlap` frames, then the last frame held still.
            seed = torch.cat([prev[:, T - overlap:], prev[:, -1:].expand(-1, T - overlap,
                                                                       -1, -1, -1)], 1)
            known = model.encode_latent(seed)
            known_mask = _region_known_mask(model, (0, X, 0, Y, 0, Z, overlap, T))
        x0 = model.sample(num_samples, cond=cond, known=known, known_mask=known_mask,
                          **sample_kwargs)
        new = _decode(model, x0)
        if overlap:
            new[:, :overlap] = window[:, T - overlap:]
        pieces.append(new[:, overlap:])
        total += T - overlap
        window = new
    return torch.cat(pieces, 1)[:, :num_frames]


@torch.no_grad()
def continue_scene(model, voxels, num_frames: Optional[int] = None, overlap: int = 4,
                   num_samples: int = 1, **kwargs) -> Tensor:
    """Continue a given window: output = the given T frames followed by new ones
    (``num_frames`` in all; default one more window). The given frames are kept exactly."""
    v = _voxels(voxels)
    T = v.shape[0]
    num_frames = num_frames or 2 * T - overlap
    return generate_long(model, num_frames, first_window=v, overlap=overlap,
                         num_samples=num_samples, **kwargs)


@torch.no_grad()
def single_frame(model, frame, num_samples: int = 1, keep_static: bool = True,
                 cond: Optional[dict] = None, **sample_kwargs) -> Tensor:
    """A 4D window from one given frame 0 (kept exactly).

    The frame is held still for T frames and encoded. That static window is (a) the
    ``hexplane`` condition when the model has one (the "previous window" of a scene at rest)
    and (b) with ``keep_static`` the source of known latent cells: the spatial planes (xy,
    xz, yz: the scene's layout) of a HexPlane, so the sampler generates the time planes (the
    motion); the time slice(s) over frame 0 of a grid latent (``frame_mask([0])``, see the
    module doc). Frame 0 is pasted back.

    Args:
        frame: (X, Y, Z) class ids.

    Returns:
        uint8 (N, T, X, Y, Z) with out[:, 0] == frame.
    """
    f = torch.as_tensor(np.asarray(frame)).long()
    if f.ndim != 3:
        raise ValueError(f'frame must be (X, Y, Z) class ids; got shape {tuple(f.shape)}')
    T = model.adapter.voxel_shape[0] if getattr(model.adapter, 'voxel_shape', None) else None
    if T is None:
        raise ValueError('single_frame needs the adapter voxel_shape (T, X, Y, Z)')
    static = f[None, None].expand(1, T, *f.shape).to(model.device)  # (1, T, X, Y, Z)
    latent = model.encode_latent(static)
    cond = dict(cond or {})
    if 'hexplane' in model.condition_keys:
        cond['hexplane'] = _batch(latent, num_samples)
    known = known_mask = None
    if keep_static:
        known = _batch(latent, num_samples)
        if hasattr(model.adapter, 'plane_mask'):  # HexPlane: the spatial planes = the layout
            known_mask = model.adapter.plane_mask(SPATIAL_PLANES, model.device)
        elif hasattr(model.adapter, 'frame_mask'):  # grid: the time slice(s) over frame 0
            known_mask = model.adapter.frame_mask([0], model.device, halo=0)
        else:
            raise NotImplementedError('single_frame(keep_static=True) needs a latent adapter '
                                      'with plane_mask() or frame_mask()')
        known_mask = known_mask[None, None]
    out = _decode(model, model.sample(num_samples, cond=cond, known=known, known_mask=known_mask,
                                      **sample_kwargs))
    out[:, 0] = f.to(torch.uint8)
    return out


# ------------------------------------------------------------- what a model can do
GENERATION_TASKS = ('uncond', 'command', 'trajectory', 'layout', 'continue', 'long',
                    'inpaint', 'outpaint', 'single-frame')
FORECAST_TASKS = ('forecast', )


def is_forecaster(model) -> bool:
    """A world model / forecasting baseline (``history_frames`` + ``future_frames``, no
    latent sampler): :class:`~occworld4d.models.world_models.OccWorld`, ``CopyLastForecaster``,
    ``EgoWarpForecaster``."""
    return (hasattr(model, 'history_frames') and hasattr(model, 'future_frames')
            and not callable(getattr(model, 'sample', None)))


def supported_tasks(model) -> Tuple[str, ...]:
    """The ``tools/sample.py`` tasks ``model`` can run, in the order of the task list.

    Forecasters: ``forecast``. Latent-diffusion generators: ``uncond``; ``command`` /
    ``trajectory`` / ``layout`` when the model was trained with that condition; ``continue``
    and ``long`` (chained windows) and ``inpaint`` with an adapter that maps a voxel box to
    latent cells (``region_mask``); ``outpaint`` when it also knows its ``voxel_shape``;
    ``single-frame`` with ``voxel_shape`` and ``plane_mask`` / ``frame_mask``.
    """
    if is_forecaster(model):
        return FORECAST_TASKS
    if not callable(getattr(model, 'sample', None)):
        return ()
    keys = tuple(getattr(model, 'condition_keys', ()) or ())
    adapter = getattr(model, 'adapter', None)
    region = adapter is not None and hasattr(adapter, 'region_mask')
    shape = getattr(adapter, 'voxel_shape', None) is not None
    frame = adapter is not None and (hasattr(adapter, 'plane_mask')
                                     or hasattr(adapter, 'frame_mask'))
    can = dict(uncond=True, command='command' in keys, trajectory='trajectory' in keys,
               layout='layout' in keys, long=region, inpaint=region, outpaint=region and shape,
               single_frame=shape and frame)
    can['continue'] = region
    can['single-frame'] = can.pop('single_frame')
    return tuple(t for t in GENERATION_TASKS if can[t])


def unsupported_task_message(model, task: str) -> Optional[str]:
    """One line naming what ``model`` can do when it cannot run ``task`` (else None)."""
    tasks = supported_tasks(model)
    if task in tasks:
        return None
    kind = type(model).__name__
    if not tasks:
        return f'{kind} cannot run --task {task}: it is neither a generator nor a forecaster'
    return (f'{kind} cannot run --task {task}; the tasks it can run are: {", ".join(tasks)}')


def model_device(model) -> torch.device:
    """The device of a model's parameters / buffers (CPU for a parameter-free baseline)."""
    device = getattr(model, 'device', None)
    if isinstance(device, torch.device):
        return device
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device('cpu')


# ------------------------------------------------------------------ forecasting
@torch.no_grad()
def forecast_scene(model, semantics, trajectory=None, command=None, ego_poses=None,
                   meta: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """Forecast the future of one scene with a world model / forecasting baseline.

    The window goes through the dataset's packing (``PackOccInputs``) and the model's
    ``test_step`` (data preprocessor + ``predict``), exactly like a test window.

    Args:
        semantics: (T, X, Y, Z) class ids, T = the model's ``history_frames`` H (forecast
            only) or H + ``future_frames`` F (the last F frames are then the ground truth).
        trajectory: (T, 3) (x, y, yaw) relative to frame 0 (default: standing still).
        command: 0-3 or STATIC / FORWARD / LEFT / RIGHT (default FORWARD).
        ego_poses: (T, 4, 4) world-from-ego (the ego-warp baseline needs them).
        meta: metainfo of the window (vocabulary, free_label, pc_range, voxel_size, scene).

    Returns:
        dict(semantics uint8 (F, X, Y, Z) forecast frames, history uint8 (H, X, Y, Z),
        pred_trajectory float32 (F, 2) planned ego positions (metres, from the last history
        frame), gt_semantics / gt_trajectory when the window has the future, and
        forecast_seconds).
    """
    H, Fu = int(model.history_frames), int(model.future_frames)
    sem = np.asarray(semantics)
    if sem.ndim != 4 or sem.shape[0] not in (H, H + Fu):
        raise ValueError(f'forecast: the scene must be (T, X, Y, Z) with T = history_frames '
                         f'{H} or history + future_frames {H + Fu}; got shape {sem.shape}')
    T = sem.shape[0]
    window = dict(meta or {})
    window['semantics'] = sem.astype(np.uint8)
    if trajectory is not None:
        window['trajectory'] = np.asarray(trajectory, np.float32)
    window['command'] = parse_command(command) if command is not None else COMMANDS['FORWARD']
    if ego_poses is not None:
        poses = np.asarray(ego_poses, np.float64)
        if poses.shape != (T, 4, 4):
            raise ValueError(f'forecast: ego_poses must be ({T}, 4, 4); got {poses.shape}')
        window['ego_poses'] = poses
    data = pseudo_collate([PackOccInputs()(window)])
    (sample, ) = model.test_step(data)
    out = dict(semantics=sample.pred_semantics.cpu().numpy().astype(np.uint8),
               history=sem[:H].astype(np.uint8),
               pred_trajectory=np.asarray(sample.pred_ego_trajectory, np.float32),
               forecast_seconds=np.float32(sample.forecast_seconds))
    if T == H + Fu:
        out['gt_semantics'] = sem[H:].astype(np.uint8)
        out['gt_trajectory'] = np.asarray(sample.gt_ego_trajectory, np.float32)
    return out


# ------------------------------------------------------------------ layouts of a config
LAYOUT_TRANSFORMS = ('UniSceneLayout', 'MakeLayout')


def layout_transform_spec(cfg) -> Optional[dict]:
    """The layout transform (``UniSceneLayout`` / ``MakeLayout``) of a config's training
    pipeline as a plain dict, adapted to a bare scene (a ``UniSceneLayout`` from boxes reads
    the occupancy instead), or None when the config builds no layout."""
    pipeline = (cfg.get('train_dataloader') or {}).get('dataset', {}).get('pipeline', [])
    specs = [t for t in pipeline if isinstance(t, dict) and t.get('type') in LAYOUT_TRANSFORMS]
    if not specs:
        return None
    spec = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(specs[0]).items()}
    if spec['type'] == 'UniSceneLayout' and spec.get('source', 'occupancy') != 'occupancy':
        spec = dict(spec, source='occupancy', map_from_occupancy=[])
    return spec


def layout_spec_key(spec: Optional[dict]) -> str:
    """A canonical string of a layout spec (what ``layout_spec`` in a scene npz holds): two
    configs make the same layouts when their keys are equal."""
    return json.dumps(spec, sort_keys=True, default=str) if spec is not None else ''


def layout_from_scene(cfg, voxels) -> np.ndarray:
    """A layout (T, h, w) of a scene (T, X, Y, Z) made exactly like the config's training
    layouts (:func:`layout_transform_spec`), read with the config's ``vocabulary``.

    Raises:
        ValueError: the config builds no layout or names no vocabulary.
    """
    spec = layout_transform_spec(cfg)
    if spec is None:
        raise ValueError('the config\'s training pipeline has no layout transform '
                         f'({" / ".join(LAYOUT_TRANSFORMS)}) to build a layout from a scene')
    vocabulary = cfg.get('vocabulary')
    if vocabulary is None:
        raise ValueError('the config names no "vocabulary" to read the scene with')
    window = dict(semantics=np.asarray(voxels).astype(np.uint8), vocabulary=vocabulary)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        transform = TRANSFORMS.build(spec)
    return np.asarray(transform(window)['layout'])
