"""Statistics of sets of 4D semantic scenes: what a generator's samples are compared on.

Pure functions (numpy in, numpy out; torch inside where it is faster). A scene is an integer
array (T, X, Y, Z) of class ids; a set of scenes is (N, T, X, Y, Z) or a sequence of
(T, X, Y, Z) arrays.

* :func:`class_frequencies`: fraction of voxels of every class, free included or excluded.
* :func:`total_variation`: TV distance ``0.5 * sum |p - q|`` of two frequency vectors.
* :func:`frame_change_rates` / :func:`change_rate`: fraction of voxels whose class changes
  between consecutive frames (31 % in a speckled sample, 9 % in the tiny synthetic city).
* :func:`memorisation` (in :mod:`.memorisation`, importable from here): each sample's best
  IoU against every training scene (semantic mIoU in the ``dynamiccity`` convention,
  training scene = ground truth, and binary occupancy IoU), vectorised as one matrix
  product per class over chunks of training scenes.
* :func:`register_frames` / :func:`integrate_steps` / :func:`command_from_motion` /
  :func:`recover_commands`: the ego's motion recovered from a scene alone by registering
  consecutive frames, and the driving command it implies.

Command recovery. Frames are rendered in the ego frame (x forward, y left, the ego at the
origin of ``pc_range``), so the static world moves opposite to the ego. If the ego moves
by (yaw, dx, dy) between frames t and t + 1 (frame t + 1's pose in frame t's axes), a static
point at metric position q of frame t + 1 is at ``R(yaw) q + (dx, dy)`` in frame t. The
registration compares the bird's-eye occupancy of every static class (any voxel of the
column, one channel per class) of frame t, bilinearly sampled at ``R q + d``, with frame
t + 1, over the cells that are inside both grids and hold no dynamic class (vehicles and
pedestrians move on their own; the ground under them is not drawn), and keeps the
candidate of least mean absolute difference. The search for each step is centred on the
previous step's motion (a vehicle's motion changes slowly) and spans what a car does in one
frame (16 m/s, 3 rad/s at ``frame_rate``): exhaustive on maps pooled to ~16 x 16 cells,
then 3 x 3 x 3 candidates on the full grid around the best, halving the step down to 1/8
voxel; a tiny penalty on the distance from the centre makes ties (a frame without static
structure) give no motion. The steps are chained into a trajectory in frame 0's axes (the
convention of ``structures.geometry.trajectory_from_poses``), and the command is LEFT / RIGHT
when the total heading change exceeds ``yaw_threshold``, else FORWARD when the net
displacement exceeds ``distance_threshold``, else STATIC (the order of
``structures.geometry.command_from_trajectory``, with thresholds for whole windows that
registration resolves, instead of its per-step 0.0025 rad / 0.03 m).

Measured (``docs/evaluation.md``): 256 / 256 tiny synthetic-city val windows (8 x 32 x 32 x 8,
10 Hz, 64 per scenario) get their command, also under 10 % voxel label noise; 64 / 64 at
2 Hz; about 0.1 s (10 Hz) / 0.9 s (2 Hz) of one CPU thread per window.
"""
import math
import warnings
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from occworld4d.rendering import bev_layout
from occworld4d.structures.vocabularies import COMMANDS
from .memorisation import memorisation  # noqa: F401  (part of this module's interface)
from .scenes import ArrayLike, Scenes, _np, _stack

STATIC, FORWARD, LEFT, RIGHT = (COMMANDS.index(c) for c in ('STATIC', 'FORWARD', 'LEFT',
                                                             'RIGHT'))
# The synthetic city's scenarios (datasets.synthetic_city.SCENARIOS) and their commands.
SCENARIO_COMMANDS = dict(straight=FORWARD, left=LEFT, right=RIGHT, stop=STATIC)
# Class names (any vocabulary of structures.vocabularies) of things that move on their own.
DYNAMIC_CLASS_NAMES = frozenset({
    'vehicle', 'vehicles', 'car', 'bus', 'truck', 'trailer', 'construction_vehicle',
    'motorcycle', 'bicycle', 'pedestrian', 'person', 'cyclist', 'bicyclist', 'motorcyclist',
    'dynamic'})

def static_classes(class_names: Sequence[str], free_label: int) -> Tuple[int, ...]:
    """Ids of the classes that do not move on their own (not free, not in
    :data:`DYNAMIC_CLASS_NAMES`), e.g. building, road, vegetation."""
    return tuple(i for i, n in enumerate(class_names)
                 if i != free_label and n.lower() not in DYNAMIC_CLASS_NAMES)


def dynamic_classes(class_names: Sequence[str]) -> Tuple[int, ...]:
    """Ids of the classes in :data:`DYNAMIC_CLASS_NAMES` (vehicles, pedestrians, ...)."""
    return tuple(i for i, n in enumerate(class_names) if n.lower() in DYNAMIC_CLASS_NAMES)


# ----------------------------------------------------------------------------- frequencies
def class_counts(scenes: Scenes, num_classes: int) -> np.ndarray:
    """Voxel count of every class over a set of scenes: int64 (K,).

    Raises:
        ValueError: a class id outside [0, K).
    """
    arr = _stack(scenes)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= num_classes):
        raise ValueError(f'class ids span [{int(arr.min())}, {int(arr.max())}], expected '
                         f'[0, {num_classes}) for num_classes={num_classes}')
    return np.bincount(arr.reshape(-1).astype(np.int64), minlength=num_classes)


def class_frequencies(scenes: Scenes, num_classes: int, free_label: Optional[int] = None,
                      exclude_free: bool = False) -> np.ndarray:
    """Fraction of voxels of every class over a set of scenes.

    Args:
        scenes: (N, T, X, Y, Z) or a sequence of (T, X, Y, Z) class ids.
        num_classes: K.
        free_label: id of free space (needed with ``exclude_free``).
        exclude_free: frequencies among the occupied voxels only (free's entry is 0).

    Returns:
        float64 (K,) summing to 1 (all zeros when nothing is counted).
    """
    counts = class_counts(scenes, num_classes).astype(np.float64)
    if exclude_free:
        if free_label is None:
            raise ValueError('class_frequencies: exclude_free needs free_label')
        counts[free_label] = 0.0
    total = counts.sum()
    return counts / total if total > 0 else counts


def total_variation(p: ArrayLike, q: ArrayLike) -> float:
    """Total variation distance ``0.5 * sum_k |p_k - q_k|`` of two frequency vectors (K,),
    each normalised to sum 1 first; in [0, 1]."""
    p, q = _np(p).astype(np.float64).reshape(-1), _np(q).astype(np.float64).reshape(-1)
    if p.shape != q.shape:
        raise ValueError(f'total_variation: vectors of different lengths {p.shape} / {q.shape}')
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError('total_variation: expected non-negative vectors with a positive sum')
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


# ----------------------------------------------------------------------------- change rate
def frame_change_rates(scenes: Scenes) -> np.ndarray:
    """Fraction of voxels whose class differs between frame t and t + 1.

    Args:
        scenes: (N, T, X, Y, Z) or a sequence of (T, X, Y, Z) class ids, T >= 2.

    Returns:
        float64 (N, T - 1).
    """
    arr = _stack(scenes)
    if arr.shape[1] < 2:
        raise ValueError(f'change rate needs at least 2 frames, got scenes of shape '
                         f'{arr.shape[1:]}')
    changed = arr[:, 1:] != arr[:, :-1]  # (N, T - 1, X, Y, Z)
    return changed.reshape(changed.shape[0], changed.shape[1], -1).mean(-1)


def change_rate(scenes: Scenes) -> float:
    """Per-frame change rate (:func:`frame_change_rates`) averaged over frames and scenes."""
    return float(frame_change_rates(scenes).mean())


# ----------------------------------------------------------------------------- ego motion
def _grid_xy(pc_range: Sequence[float], X: int, Y: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Metric centres (X, Y) of the BEV cells (ego frame)."""
    x0, y0, x1, y1 = pc_range[0], pc_range[1], pc_range[3], pc_range[4]
    cx = x0 + (torch.arange(X, dtype=torch.float32) + 0.5) * (x1 - x0) / X
    cy = y0 + (torch.arange(Y, dtype=torch.float32) + 0.5) * (y1 - y0) / Y
    return torch.meshgrid(cx, cy, indexing='ij')


def _bev_maps(scene: np.ndarray, static_ids: Sequence[int], dynamic_ids: Sequence[int]
              ) -> torch.Tensor:
    """(T, X, Y, Z) -> float (T, C + 1, X, Y): column occupancy of every static class, then
    the mask of columns without a dynamic class."""
    sem = torch.from_numpy(np.ascontiguousarray(scene).astype(np.int64))
    maps = torch.stack([(sem == c).any(-1) for c in static_ids], 1).float()  # (T, C, X, Y)
    dyn = torch.zeros(sem.shape[:-1], dtype=torch.bool)  # (T, X, Y)
    for c in dynamic_ids:
        dyn |= (sem == c).any(-1)
    return torch.cat([maps, (~dyn).float()[:, None]], 1)  # (T, C + 1, X, Y)


def _align_errors(src: torch.Tensor, dst: torch.Tensor, cand: torch.Tensor,
                  gx: torch.Tensor, gy: torch.Tensor, pc_range: Sequence[float],
                  min_cells: float) -> torch.Tensor:
    """Mean absolute difference between ``dst`` and ``src`` warped by every candidate.

    Args:
        src: (P, C + 1, X, Y) maps of frame t for P pairs; the last channel is the
            no-dynamic-class mask.
        dst: (P, C + 1, X, Y) the same of frame t + 1.
        cand: (P, N, 3) candidates (yaw, dx, dy): dst(q) ~ src(R(yaw) q + (dx, dy)).
        gx, gy: (X, Y) metric cell centres.

    Returns:
        (P, N) errors (per compared cell, summed over channels); +inf where fewer than
        ``min_cells`` cells are compared.
    """
    P, N = cand.shape[:2]
    X, Y = gx.shape
    c, s = torch.cos(cand[..., 0])[..., None, None], torch.sin(cand[..., 0])[..., None, None]
    px = c * gx - s * gy + cand[..., 1, None, None]  # (P, N, X, Y) metric x in frame t
    py = s * gx + c * gy + cand[..., 2, None, None]
    u = (px - pc_range[0]) / (pc_range[3] - pc_range[0]) * 2 - 1  # grid_sample's H axis
    v = (py - pc_range[1]) / (pc_range[4] - pc_range[1]) * 2 - 1  # its W axis
    grid = torch.stack([v, u], -1).reshape(P, N * X, Y, 2)  # (P, N * X, Y, 2)
    inp = torch.cat([src, torch.ones_like(src[:, :1])], 1)  # (P, C + 2, X, Y)
    out = F.grid_sample(inp, grid, mode='bilinear', padding_mode='zeros',
                        align_corners=False).reshape(P, -1, N, X, Y)  # (P, C + 2, N, X, Y)
    inside = (out[:, -1] > 0.999).float()  # (P, N, X, Y) the whole bilinear stencil in src
    weight = inside * out[:, -2] * dst[:, -1, None]  # (P, N, X, Y) static in both frames
    diff = (out[:, :-2] - dst[:, :-1, None]).abs().sum(1)  # (P, N, X, Y)
    cells = weight.sum((-1, -2))  # (P, N)
    err = (diff * weight).sum((-1, -2)) / cells.clamp(min=1e-6)
    return torch.where(cells >= min_cells, err, torch.full((), float('inf')))


def _pool_factor(X: int, Y: int, cells: int) -> int:
    """Largest power of two p dividing X and Y with X / p >= cells (1 if none)."""
    p = 1
    while X % (2 * p) == 0 and Y % (2 * p) == 0 and X // (2 * p) >= cells:
        p *= 2
    return p


def register_frames(scenes: Scenes, static_ids: Sequence[int], dynamic_ids: Sequence[int],
                    pc_range: Sequence[float], frame_rate: float = 10.0,
                    max_speed: float = 16.0, max_yaw_rate: float = 3.0,
                    coarse_yaw_step: float = 0.1, coarse_cells: int = 16,
                    refine_points: int = 1, min_cells: float = 16.0, chunk: int = 4
                    ) -> np.ndarray:
    """Ego motion between consecutive frames of each scene, from the scene alone.

    See the module docstring for the model. Each step is searched around the previous
    step's motion (zero for the first) over yaw in ``+-max_yaw_rate / frame_rate`` and dx,
    dy in ``+-max_speed / frame_rate`` metres: first exhaustively on maps average-pooled to
    about ``coarse_cells`` cells a side (yaw every ``coarse_yaw_step``, shifts every half
    pooled cell), then on the full grid by ``(2 refine_points + 1)^3`` candidates around
    the best, halving the step until it is below 1/8 voxel and 0.01 rad.

    Args:
        scenes: (N, T, X, Y, Z) or (T, X, Y, Z) class ids, T >= 2.
        static_ids: classes registered (:func:`static_classes`).
        dynamic_ids: classes whose columns are left out (:func:`dynamic_classes`).
        pc_range: (x0, y0, z0, x1, y1, z1) metres of the grid in the ego frame (the ego at
            the origin).
        frame_rate: frames per second of the scenes (Hz).
        max_speed, max_yaw_rate: the fastest ego motion searched (m/s, rad/s).
        coarse_yaw_step, coarse_cells, refine_points: the search grid (see above).
        min_cells: fewest compared (static, overlapping) cells for a candidate to count.
        chunk: scenes registered together (bounds the memory of the candidate grids).

    Returns:
        float64 (N, T - 1, 3): (yaw, dx, dy) of frame t + 1's ego in frame t's axes.
    """
    arr = _stack(scenes)
    N, T, X, Y, _ = arr.shape
    if T < 2:
        raise ValueError(f'register_frames needs at least 2 frames, got {T}')
    if not static_ids:
        raise ValueError('register_frames: no static class to register')
    if not frame_rate > 0:
        raise ValueError(f'register_frames: frame_rate must be > 0 Hz, got {frame_rate}')
    pc = [float(v) for v in pc_range]
    voxel = min((pc[3] - pc[0]) / X, (pc[4] - pc[1]) / Y)
    search = dict(max_yaw=max_yaw_rate / frame_rate, max_shift=max_speed / frame_rate,
                  yaw_step=coarse_yaw_step, pool=_pool_factor(X, Y, coarse_cells),
                  voxel=voxel, min_cells=min_cells, refine_points=refine_points)
    steps = np.zeros((N, T - 1, 3))
    for i in range(0, N, chunk):
        steps[i:i + chunk] = _register_block(arr[i:i + chunk], static_ids, dynamic_ids, pc,
                                             **search)
    return steps


def _register_block(arr, static_ids, dynamic_ids, pc, max_yaw, max_shift, yaw_step, pool,
                    voxel, min_cells, refine_points) -> np.ndarray:
    """:func:`register_frames` of a block of scenes (n, T, X, Y, Z) -> (n, T - 1, 3)."""
    N, T, X, Y, _ = arr.shape
    maps = torch.stack([_bev_maps(a, static_ids, dynamic_ids) for a in arr])  # (N, T, C+1, X, Y)
    fine_g = _grid_xy(pc, X, Y)
    coarse = F.avg_pool2d(maps.flatten(0, 1), pool).unflatten(0, (N, T))  # (N, T, C+1, x, y)
    coarse_g = _grid_xy(pc, X // pool, Y // pool)
    shift_step = 0.5 * pool * voxel
    ny, ns = int(math.ceil(max_yaw / yaw_step)), int(math.ceil(max_shift / shift_step))
    grid0 = torch.stack(torch.meshgrid(
        torch.arange(-ny, ny + 1) * (max_yaw / max(ny, 1)),
        torch.arange(-ns, ns + 1) * (max_shift / max(ns, 1)),
        torch.arange(-ns, ns + 1) * (max_shift / max(ns, 1)), indexing='ij'),
        -1).reshape(-1, 3).float()  # (n0, 3) coarse offsets
    r = torch.arange(-refine_points, refine_points + 1, dtype=torch.float32)
    unit = torch.stack(torch.meshgrid(r, r, r, indexing='ij'), -1).reshape(-1, 3)  # (n1, 3)
    levels, step = [], torch.tensor([min(yaw_step, max_yaw), min(shift_step, max_shift),
                                     min(shift_step, max_shift)]) / refine_points
    while True:
        levels.append(unit * step)
        if step[1] <= voxel / 8 and step[0] <= 0.01:
            break
        step = step / 2
    scale = torch.tensor([max_yaw, max_shift, max_shift])
    steps = np.zeros((N, T - 1, 3))
    prior = torch.zeros(N, 3)
    rows = torch.arange(N)
    for t in range(T - 1):
        centre = prior
        for k, offs in enumerate([grid0] + levels):
            src, dst, (gx, gy) = ((coarse[:, t], coarse[:, t + 1], coarse_g) if k == 0 else
                                  (maps[:, t], maps[:, t + 1], fine_g))
            cand = centre[:, None] + offs[None]  # (N, n, 3)
            cells = min_cells / (pool * pool) if k == 0 else min_cells
            err = _align_errors(src, dst, cand, gx, gy, pc, cells)  # (N, n)
            # ties (no structure) -> the candidate nearest the prior
            err = err + 1e-6 * ((cand - prior[:, None]) / scale).abs().sum(-1)
            centre = cand[rows, err.argmin(1)]  # (N, 3)
        steps[:, t] = centre.double().numpy()
        prior = centre
    return steps


def integrate_steps(steps: ArrayLike) -> np.ndarray:
    """Chain per-step motions into a trajectory relative to frame 0.

    Args:
        steps: (N, T - 1, 3) or (T - 1, 3) of (yaw, dx, dy), each in the previous frame's axes
            (:func:`register_frames`).

    Returns:
        float64 (N, T, 3) (or (T, 3)) rows (dx, dy, yaw) of frame t in frame 0's axes, row 0
        zeros: the convention of ``structures.geometry.trajectory_from_poses``.
    """
    st = _np(steps).astype(np.float64)
    single = st.ndim == 2
    st = st[None] if single else st
    N, S, _ = st.shape
    out = np.zeros((N, S + 1, 3))
    for t in range(S):
        yaw = out[:, t, 2]
        c, s = np.cos(yaw), np.sin(yaw)
        out[:, t + 1, 0] = out[:, t, 0] + c * st[:, t, 1] - s * st[:, t, 2]
        out[:, t + 1, 1] = out[:, t, 1] + s * st[:, t, 1] + c * st[:, t, 2]
        out[:, t + 1, 2] = yaw + st[:, t, 0]
    return out[0] if single else out


def command_from_motion(trajectory: ArrayLike, yaw_threshold: float = 0.1,
                        distance_threshold: float = 1.0) -> np.ndarray:
    """Driving command of whole windows from their trajectories.

    LEFT if the heading change over the window exceeds ``yaw_threshold`` (rad, left =
    +yaw), RIGHT if it is below ``-yaw_threshold``, else FORWARD if the net displacement
    exceeds ``distance_threshold`` (m), else STATIC (ids of ``structures.COMMANDS``). On the
    tiny synthetic city a turn changes the heading by 0.24-1.17 rad and a straight window
    moves 4.1-7.0 m (256 val windows), far from the defaults.

    Args:
        trajectory: (N, T, 3) or (T, 3) rows (dx, dy, yaw) relative to frame 0.

    Returns:
        int64 (N,) (or a 0-d array for one trajectory).
    """
    tr = _np(trajectory).astype(np.float64)
    single = tr.ndim == 2
    tr = tr[None] if single else tr
    yaw = tr[:, -1, 2] - tr[:, 0, 2]
    dist = np.hypot(tr[:, -1, 0] - tr[:, 0, 0], tr[:, -1, 1] - tr[:, 0, 1])
    cmd = np.where(dist > distance_threshold, FORWARD, STATIC)
    cmd = np.where(yaw < -yaw_threshold, RIGHT, cmd)
    cmd = np.where(yaw > yaw_threshold, LEFT, cmd).astype(np.int64)
    return cmd[0] if single else cmd


def recover_commands(scenes: Scenes, class_names: Sequence[str], free_label: int,
                     pc_range: Sequence[float], yaw_threshold: float = 0.1,
                     distance_threshold: float = 1.0, **register_kwargs
                     ) -> Dict[str, np.ndarray]:
    """Ego motion and driving command of each scene, from its voxels alone.

    Args:
        scenes: (N, T, X, Y, Z) or a sequence of (T, X, Y, Z) class ids.
        class_names: the vocabulary's class names (static / dynamic classes by name).
        free_label: id of free space.
        pc_range: the grid's metric range in the ego frame.
        yaw_threshold, distance_threshold: :func:`command_from_motion`.
        **register_kwargs: :func:`register_frames` search parameters.

    Returns:
        dict: ``command`` int64 (N,), ``trajectory`` float64 (N, T, 3) (dx, dy, yaw),
        ``yaw`` (N,) total heading change (rad), ``distance`` (N,) net displacement (m),
        ``steps`` (N, T - 1, 3).
    """
    steps = register_frames(scenes, static_classes(class_names, free_label),
                            dynamic_classes(class_names), pc_range, **register_kwargs)
    traj = integrate_steps(steps)
    return dict(command=command_from_motion(traj, yaw_threshold, distance_threshold),
                trajectory=traj, yaw=traj[:, -1, 2],
                distance=np.hypot(traj[:, -1, 0], traj[:, -1, 1]), steps=steps)


# ----------------------------------------------------------------------------- layout
def bev_layouts(scenes: Scenes, vocabulary: str, out_size: Optional[int] = None) -> np.ndarray:
    """UniScene's BEV layout of every frame of a set of scenes, computed from their voxels
    exactly as ``UniSceneLayout(source='occupancy', out_size=...)`` computes the condition:
    ``rendering.bev_layout.layout_from_occupancy`` (a column's channels are the class groups
    it holds), collapsed to one map (0 = empty, 1 + the index of the top channel of
    ``LAYOUT_CHANNELS``: objects over map) and max-pooled to ``out_size``.

    Args:
        scenes: (N, T, X, Y, Z) or a sequence of (T, X, Y, Z) class ids.
        vocabulary: the voxels' vocabulary name.
        out_size: side of the pooled map; None = the grid's own X x Y cells.

    Returns:
        int64 (N, T, h, w) layout values in [0, len(LAYOUT_CHANNELS)].
    """
    arr = _stack(scenes)
    lay = bev_layout.layout_from_occupancy(arr, vocabulary)  # (N, T, C, X, Y) bool
    if out_size is None or int(out_size) == arr.shape[2] == arr.shape[3]:
        out = bev_layout.collapse_layout(lay)
    else:
        out = bev_layout.uniscene_layout(lay, int(out_size))
    return out.round().long().numpy()


def layout_agreement(layouts: ArrayLike, reference: ArrayLike, num_classes: int,
                     ignore: Sequence[int] = (0, )) -> Dict[str, np.ndarray]:
    """Agreement of BEV layouts with reference (requested) layouts: IoU of every layout
    class in BEV, pooled over all cells of all frames and scenes.

    Args:
        layouts: (N, T, h, w) layout values (e.g. :func:`bev_layouts` of the samples).
        reference: the same shape: the requested layouts (floats are rounded).
        num_classes: L + 1 values 0..L (UniScene: 13 = empty + 12 channels).
        ignore: values left out of the mean (0 = empty cell, as free in occupancy mIoU).

    Returns:
        dict: ``iou`` float64 (L + 1,) (NaN where the class is in neither layout, or
        ignored), ``miou`` (mean of the finite entries; NaN if none), ``sample_miou``
        float64 (N,) the same per scene, ``intersection`` / ``union`` int64 (L + 1,),
        ``miou_requested``: the mean over the classes present in the reference only (a class
        that only the layouts hold, IoU 0 in ``miou``, is left out; reported beside
        ``miou``, which stays the verdict).
    """
    a, b = np.rint(_np(layouts)).astype(np.int64), np.rint(_np(reference)).astype(np.int64)
    if a.shape != b.shape:
        raise ValueError(f'layout_agreement: layouts of shape {a.shape} != reference '
                         f'{b.shape}')
    if a.ndim != 4:
        raise ValueError(f'layout_agreement: expected (N, T, h, w) layouts, got {a.shape}')
    for name, x in (('layouts', a), ('reference', b)):
        if x.size and (int(x.min()) < 0 or int(x.max()) >= num_classes):
            raise ValueError(f'layout_agreement: {name} values span [{int(x.min())}, '
                             f'{int(x.max())}], expected [0, {num_classes})')
    n = len(a)
    a, b = a.reshape(n, -1), b.reshape(n, -1)
    inter = np.zeros((n, num_classes), np.int64)
    union = np.zeros((n, num_classes), np.int64)
    for c in range(num_classes):
        pa, pb = a == c, b == c
        inter[:, c] = (pa & pb).sum(1)
        union[:, c] = (pa | pb).sum(1)
    keep = np.ones(num_classes, bool)
    keep[list(ignore)] = False

    def _iou(i, u):
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = np.where(u > 0, i / np.maximum(u, 1), np.nan)
        iou[..., ~keep] = np.nan
        return iou

    iou = _iou(inter.sum(0), union.sum(0))
    per = _iou(inter, union)  # (N, L + 1)
    with warnings.catch_warnings():  # rows without a class are NaN, said so
        warnings.simplefilter('ignore', RuntimeWarning)
        sample_miou = np.nanmean(per, axis=1) if n else np.zeros(0)
    miou = float(np.nanmean(iou)) if np.isfinite(iou).any() else float('nan')
    requested = np.where(np.bincount(b.ravel(), minlength=num_classes) > 0, iou, np.nan)
    miou_requested = (float(np.nanmean(requested)) if np.isfinite(requested).any()
                      else float('nan'))
    return dict(iou=iou, miou=miou, sample_miou=sample_miou, miou_requested=miou_requested,
                intersection=inter.sum(0), union=union.sum(0))
