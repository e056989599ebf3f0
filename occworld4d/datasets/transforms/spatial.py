"""Spatial transforms: crop / resize for tiny configs, BEV flips and 90-degree rotations.

Flips and rotations treat the grid as centred on the ego (symmetric ``pc_range``), and
transform everything that has a direction consistently: voxels and masks (T, X, Y, Z),
``layout`` (T, h, w), ``ego_poses`` (T, 4, 4), ``trajectory`` (T, 3) and ``command``.
"""
from typing import Optional, Sequence

import numpy as np

from occworld4d.registry import TRANSFORMS
from occworld4d.structures.geometry import LEFT, RIGHT
from .formatting import VOXEL_KEYS


def _voxel_keys(results):
    return [k for k in VOXEL_KEYS if k in results]


def _layout_factors(transform: str, results: dict, grid, sizes, offsets=(0, 0)):
    """Pooling factors (px, py) of ``results['layout']`` (T, h, w) over the voxel grid, when
    the crop / resize keeps whole layout cells; else a clear error (None if no layout)."""
    layout = results.get('layout')
    if layout is None:
        return None
    h, w = np.shape(layout)[1:3]
    ok = grid[0] % h == 0 and grid[1] % w == 0
    px, py = (grid[0] // h, grid[1] // w) if ok else (1, 1)
    ok = ok and all(v % f == 0 for v, f in zip((*sizes[:2], *offsets[:2]), (px, py, px, py)))
    if not ok:
        raise ValueError(
            f'{transform}: the window (scene {results.get("scene")}) has a layout of shape '
            f'{np.shape(layout)} that the {transform} to {tuple(sizes)} does not map onto whole '
            f'layout cells (grid {tuple(grid[:2])}); put MakeLayout after {transform} in the '
            'pipeline so the layout is computed from the new voxels')
    return px, py


def _nearest(new: int, old: int) -> np.ndarray:
    """Index of the old cell holding the centre of each of ``new`` resampled cells."""
    return np.minimum(((np.arange(new) + 0.5) * old / new).astype(np.int64), old - 1)


@TRANSFORMS.register_module()
class CropVoxels:
    """Crop voxels and masks to ``size`` (X, Y, Z); ``offset`` None = centred in X, Y and
    from the bottom in Z. Updates ``pc_range`` when present; an existing ``layout`` is cropped
    with them when the crop covers whole layout cells (else a clear error)."""

    def __init__(self, size: Sequence[int], offset: Optional[Sequence[int]] = None):
        self.size = tuple(int(s) for s in size)
        self.offset = None if offset is None else tuple(int(o) for o in offset)

    def __call__(self, results: dict) -> dict:
        grid = results['semantics'].shape[1:]
        if self.offset is None:
            offset = ((grid[0] - self.size[0]) // 2, (grid[1] - self.size[1]) // 2, 0)
        else:
            offset = self.offset
        if any(o < 0 or o + s > g for o, s, g in zip(offset, self.size, grid)):
            raise ValueError(f'CropVoxels: crop {self.size} at {offset} does not fit the grid '
                             f'{grid} (scene {results.get("scene")})')
        factors = _layout_factors('CropVoxels', results, grid, self.size, offset)
        sl = (slice(None),) + tuple(slice(o, o + s) for o, s in zip(offset, self.size))
        for key in _voxel_keys(results):
            results[key] = np.ascontiguousarray(results[key][sl])  # (T, x, y, z)
        if factors is not None:
            (px, py), (ox, oy), (sx, sy) = factors, offset[:2], self.size[:2]
            results['layout'] = np.ascontiguousarray(
                results['layout'][:, ox // px:(ox + sx) // px, oy // py:(oy + sy) // py])
        if results.get('pc_range') is not None and results.get('voxel_size') is not None:
            lo = np.asarray(results['pc_range'][:3], float)
            vs = np.asarray(results['voxel_size'], float)
            new_lo = lo + vs * np.asarray(offset)
            results['pc_range'] = [*new_lo.tolist(), *(new_lo + vs * self.size).tolist()]
        return results

    def __repr__(self):
        return f'{type(self).__name__}(size={self.size}, offset={self.offset})'


@TRANSFORMS.register_module()
class ResizeVoxels:
    """Nearest-neighbour resize of voxels and masks to ``size`` (X, Y, Z) (voxel centres
    sampled); updates ``voxel_size``; an existing ``layout`` is resampled the same way when the
    new size keeps whole layout cells (else a clear error)."""

    def __init__(self, size: Sequence[int]):
        self.size = tuple(int(s) for s in size)

    def __call__(self, results: dict) -> dict:
        grid = results['semantics'].shape[1:]
        factors = _layout_factors('ResizeVoxels', results, grid, self.size)
        idx = [_nearest(s, g) for s, g in zip(self.size, grid)]
        for key in _voxel_keys(results):
            results[key] = np.ascontiguousarray(
                results[key][:, idx[0]][:, :, idx[1]][:, :, :, idx[2]])  # (T, *size)
        if factors is not None:  # same sampling of layout cells (T, h, w) -> (T, x/px, y/py)
            (px, py), layout = factors, results['layout']
            ix = _nearest(self.size[0] // px, layout.shape[1])
            iy = _nearest(self.size[1] // py, layout.shape[2])
            results['layout'] = np.ascontiguousarray(layout[:, ix][:, :, iy])
        if results.get('voxel_size') is not None:
            results['voxel_size'] = [float(v) * g / s for v, g, s in
                                     zip(results['voxel_size'], grid, self.size)]
        return results

    def __repr__(self):
        return f'{type(self).__name__}(size={self.size})'


def _swap_turns(command: int) -> int:
    return {LEFT: RIGHT, RIGHT: LEFT}.get(int(command), int(command))


@TRANSFORMS.register_module()
class RandomFlip:
    """Mirror the BEV along ``axis`` ('y': left <-> right, 'x': front <-> back) with
    probability ``prob``.

    A mirror reverses handedness: y -> -y (or x -> -x) in every frame, yaw -> -yaw,
    LEFT <-> RIGHT. Poses become ``M P M`` with ``M = diag`` of the mirror (a proper
    rigid transform of the mirrored world), so the trajectory recomputed from the poses
    equals the flipped trajectory.
    """

    def __init__(self, prob: float = 0.5, axis: str = 'y'):
        if axis not in ('x', 'y'):
            raise ValueError(f'RandomFlip: axis must be "x" or "y", got {axis!r}')
        self.prob, self.axis = float(prob), axis

    def __call__(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        spatial = 1 if self.axis == 'x' else 2  # axis of (T, X, Y, Z)
        for key in _voxel_keys(results):
            results[key] = np.ascontiguousarray(np.flip(results[key], axis=spatial))
        if 'layout' in results:
            results['layout'] = np.ascontiguousarray(np.flip(results['layout'], axis=spatial))
        mirror = np.diag([-1.0, 1.0, 1.0, 1.0] if self.axis == 'x' else [1.0, -1.0, 1.0, 1.0])
        if 'ego_poses' in results:
            results['ego_poses'] = mirror @ np.asarray(results['ego_poses']) @ mirror
        if 'trajectory' in results:
            traj = np.array(results['trajectory'], dtype=np.float32)
            traj[:, 0 if self.axis == 'x' else 1] *= -1
            traj[:, 2] *= -1
            results['trajectory'] = traj
        if 'command' in results:
            results['command'] = _swap_turns(results['command'])
        results['flip'] = results.get('flip', ()) + (self.axis,)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(prob={self.prob}, axis={self.axis!r})'


@TRANSFORMS.register_module()
class RandomRotate90:
    """Rotate the BEV by ``k * 90`` degrees counter-clockwise (x towards y), ``k`` drawn
    from ``ks``.

    Voxels use ``np.rot90(axes=(X, Y))``; the ego frames are re-defined as rotated by
    ``-k * 90`` so the trajectory's (dx, dy) rotate by ``+k * 90``, yaw and command are
    unchanged, and poses become ``P R^-1``. Needs a square BEV grid for odd ``k``.
    """

    def __init__(self, ks: Sequence[int] = (0, 1, 2, 3)):
        self.ks = tuple(int(k) % 4 for k in ks)

    def __call__(self, results: dict) -> dict:
        k = self.ks[np.random.randint(len(self.ks))]
        if k == 0:
            return results
        grid = results['semantics'].shape[1:]
        if k % 2 and grid[0] != grid[1]:
            raise ValueError(f'RandomRotate90: needs a square BEV grid for k={k}, found {grid}')
        for key in _voxel_keys(results):
            results[key] = np.ascontiguousarray(np.rot90(results[key], k, axes=(1, 2)))
        if 'layout' in results:
            results['layout'] = np.ascontiguousarray(np.rot90(results['layout'], k, axes=(1, 2)))
        angle = k * np.pi / 2
        c, s = np.cos(angle), np.sin(angle)
        rot = np.eye(4)
        rot[:2, :2] = [[c, -s], [s, c]]
        if 'ego_poses' in results:
            results['ego_poses'] = np.asarray(results['ego_poses']) @ rot.T  # P R^-1
        if 'trajectory' in results:
            traj = np.array(results['trajectory'], dtype=np.float32)
            traj[:, :2] = traj[:, :2] @ rot[:2, :2].T.astype(np.float32)
            results['trajectory'] = traj
        results['rotate90'] = k
        return results

    def __repr__(self):
        return f'{type(self).__name__}(ks={self.ks})'
