"""Frames in the ego frame: voxels read from the world raster, agents, BEV visibility."""
from typing import List, Optional, Tuple

import numpy as np

from .world import World


def _grid_axes(pc_range, grid_size):
    x0, y0, z0, x1, y1, z1 = pc_range
    X, Y, Z = grid_size
    vs = np.array([(x1 - x0) / X, (y1 - y0) / Y, (z1 - z0) / Z])
    cx = x0 + (np.arange(X) + 0.5) * vs[0]
    cy = y0 + (np.arange(Y) + 0.5) * vs[1]
    zlo = z0 + np.arange(Z) * vs[2]
    return cx, cy, zlo, vs


def render_frames(world: World, poses: np.ndarray, pc_range, grid_size, ground_z: float,
                  with_visibility: bool = True, rng: Optional[np.random.Generator] = None):
    """Render each frame's ego-frame voxel grid from the world (nearest neighbour).

    Args:
        poses (T, 4, 4): world-from-ego.
        pc_range (6,), grid_size (3,): the sensor grid in the ego frame.
        ground_z: road height in the ego frame (m).

    Returns:
        dict: ``semantics`` uint8 (T, X, Y, Z) canonical classes; with visibility also
        ``visible`` bool (T, X, Y, Z) (observed by BEV rays from the sensor),
        ``point_counts`` float32 (T, X, Y, Z) (0 where unobserved) and ``infov`` bool
        (T, X, Y, Z) (inside a 230 degree front field of view).
    """
    T = len(poses)
    X, Y, Z = grid_size
    cx, cy, zlo, vs = _grid_axes(pc_range, grid_size)
    gx, gy = np.meshgrid(cx, cy, indexing='ij')  # (X, Y) ego-frame cell centres
    R, e = poses[:, :2, :2, None, None], poses[:, :2, 3, None, None]  # (T, 2, 2, 1, 1)
    wx = R[:, 0, 0] * gx + R[:, 0, 1] * gy + e[:, 0]  # (T, X, Y) world x of each cell centre
    wy = R[:, 1, 0] * gx + R[:, 1, 1] * gy + e[:, 1]
    H, W = world.ground.shape
    ii = np.clip(np.floor((wx - world.origin[0]) / world.res).astype(np.int64), 0, H - 1)
    jj = np.clip(np.floor((wy - world.origin[1]) / world.res).astype(np.int64), 0, W - 1)
    # heights of each voxel's bottom / top above the ground (Z,)
    h_lo, h_hi = zlo - ground_z, zlo + vs[2] - ground_z
    k_ground = int(np.clip(np.floor((ground_z - pc_range[2]) / vs[2]), 0, Z - 1))
    sem = np.zeros((T, X, Y, Z), np.uint8)
    sem[..., k_ground] = world.ground[ii, jj]  # (T, X, Y)

    def paint(cls, bottom, top):  # cls / bottom / top: (T, X, Y)
        hit = (h_lo < top[..., None]) & (h_hi > bottom[..., None]) & (cls[..., None] > 0)
        np.copyto(sem, np.broadcast_to(cls[..., None], sem.shape), where=hit)

    for cls, bottom, top in world.layers:
        paint(cls[ii, jj], bottom[ii, jj], top[ii, jj])
    paint(*_dynamic_layer(world, poses, gx, gy, vs))
    out = dict(semantics=sem)
    if with_visibility:
        out.update(_visibility(sem, k_ground, gx, gy, vs, rng or np.random.default_rng(0)))
    return out


def _dynamic_layer(world: World, poses, gx, gy, vs):
    """Agents drawn directly in each ego frame: (cls, bottom, top) arrays (T, X, Y)."""
    T = len(poses)
    cls = np.zeros((T,) + gx.shape, np.uint8)
    top = np.zeros((T,) + gx.shape, np.float32)
    ag = world.agents
    if not ag or len(ag['cls']) == 0:
        return cls, np.zeros_like(top), top
    reach = np.hypot(np.abs(gx).max(), np.abs(gy).max()) + 8.0
    for t in range(T):
        R, e = poses[t, :2, :2], poses[t, :2, 3]
        rel = (ag['xy'][:, t] - e) @ R  # (N, 2) agent centres in the ego frame
        near = np.nonzero(np.hypot(*rel.T) < reach)[0]
        yaw_e = np.arctan2(R[1, 0], R[0, 0])
        for n in near:
            hd = ag['heading'][n] - yaw_e
            c, s = np.cos(hd), np.sin(hd)
            L, Wd, Hh = ag['size'][n]
            half = 0.5 * np.hypot(L, Wd) + vs[0]  # reach of a rotated box
            xs = slice(*np.searchsorted(gx[:, 0], [rel[n, 0] - half, rel[n, 0] + half]))
            ys = slice(*np.searchsorted(gy[0], [rel[n, 1] - half, rel[n, 1] + half]))
            dx, dy = gx[xs, ys] - rel[n, 0], gy[xs, ys] - rel[n, 1]
            lx, ly = c * dx + s * dy, -s * dx + c * dy  # cell centres in the agent frame
            # at least the nearest cell, so sub-voxel agents (pedestrians) never vanish
            inside = (np.abs(lx) <= max(L / 2, vs[0] / 2)) & (np.abs(ly) <= max(Wd / 2, vs[1] / 2))
            cls[t, xs, ys] = np.where(inside, ag['cls'][n], cls[t, xs, ys])
            top[t, xs, ys] = np.where(inside, Hh, top[t, xs, ys])
    return cls, np.zeros_like(top), top


def _ray_parents(gx: np.ndarray, gy: np.ndarray, vs) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Line-of-sight parents of the BEV cells, grouped by hops from the sensor.

    The parent of a cell is the cell one Chebyshev ring closer to the sensor (the ego-frame
    origin) on the straight line between them: with (u, v) the cell centre in cell units and
    r = max(|u|, |v|), the cell holding (u, v) * (r - 1) / r. Cells with r < 1 (around the
    sensor), or whose parent lies outside the grid, are roots.

    Returns:
        [(cells, parents), ...] flat (X * Y) indices, in increasing distance from the roots.
    """
    X, Y = gx.shape
    u, v = gx / vs[0], gy / vs[1]  # (X, Y) cell centres in cell units
    r = np.maximum(np.abs(u), np.abs(v))
    scale = np.where(r >= 1, (r - 1) / np.maximum(r, 1e-9), 0.0)
    pi = np.floor((u * scale * vs[0] - (gx[0, 0] - vs[0] / 2)) / vs[0]).astype(np.int64)
    pj = np.floor((v * scale * vs[1] - (gy[0, 0] - vs[1] / 2)) / vs[1]).astype(np.int64)
    flat = np.arange(X * Y).reshape(X, Y)
    inside = (pi >= 0) & (pi < X) & (pj >= 0) & (pj < Y) & (r >= 1)
    parent = np.where(inside, np.clip(pi, 0, X - 1) * Y + np.clip(pj, 0, Y - 1), flat).ravel()
    depth = np.zeros(X * Y, np.int64)
    root = parent == flat.ravel()
    for _ in range(X + Y):  # hops to a root; the parent is strictly closer, so this ends
        new = np.where(root, 0, depth[parent] + 1)
        if np.array_equal(new, depth):
            break
        depth = new
    groups = []
    for d in range(1, int(depth.max()) + 1):
        cells = np.nonzero(depth == d)[0]
        groups.append((cells, parent[cells]))
    return groups


def _visibility(sem, k_ground, gx, gy, vs, rng):
    """Observed voxels: a column is seen when the cell before it on the BEV line of sight is
    seen and holds no obstacle above the ground; seen columns are observed from the ground
    voxel up (CarlaSC-like point counts: 1..8 in occupied voxels, 1..3 in free ones)."""
    T, X, Y, Z = sem.shape
    blocker = (sem[..., k_ground + 1:] > 0).any(-1) if k_ground + 1 < Z else \
        np.zeros((T, X, Y), bool)  # (T, X, Y) columns holding something above the ground
    blk = blocker.reshape(T, X * Y)
    seen = np.ones((T, X * Y), bool)
    for cells, parents in _ray_parents(gx, gy, vs):
        seen[:, cells] = seen[:, parents] & ~blk[:, parents]
    visible = seen.reshape(T, X, Y)[..., None] & (np.arange(Z) >= k_ground)  # (T, X, Y, Z)
    draw = rng.integers(0, 24, sem.shape, dtype=np.uint8)
    counts = np.where(sem > 0, draw % 8 + 1, draw % 3 + 1)
    counts = np.where(visible, counts, 0).astype(np.float32)
    angle = np.abs(np.arctan2(gy, gx))
    infov = np.broadcast_to((angle <= np.deg2rad(115))[None, ..., None], sem.shape)
    return dict(visible=visible, point_counts=counts, infov=np.ascontiguousarray(infov))
