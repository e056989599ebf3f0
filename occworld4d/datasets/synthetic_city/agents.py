"""Traffic: vehicles along lanes and pedestrians along sidewalks, never overlapping."""
from typing import Dict, List

import numpy as np

from .classes import PEDESTRIAN, VEHICLE
from .params import CityParams
from .world import World

_DIMS = {VEHICLE: ((4.2, 4.9), (1.8, 2.0), (1.5, 1.8)), PEDESTRIAN: ((0.5, 0.7),) * 2 +
         ((1.6, 1.9),)}


def spawn_agents(world: World, ego_xy: np.ndarray, t: np.ndarray, rng: np.random.Generator,
                 prm: CityParams, density: float = 1.0) -> Dict[str, np.ndarray]:
    """Vehicles along lanes and pedestrians along sidewalks, none overlapping in any frame.

    Returns:
        dict of arrays over N agents: ``cls`` (N,) canonical class, ``xy`` (N, T, 2) centre
        tracks, ``heading`` (N,) radians (constant; agents move straight), ``size`` (N, 3)
        length, width, height, ``velocity`` (N, 2) m/s.
    """
    lw, sw = prm.lane_width, prm.sidewalk_width
    lo = world.origin
    hi = lo + np.array(world.ground.shape) * world.res
    cand = []  # (cls, x0, y0, heading, speed, L, W, H)
    for r in world.roads:
        a_lo, a_hi = (lo[0], hi[0]) if r.axis == 0 else (lo[1], hi[1])
        base_heading = 0.0 if r.axis == 0 else 0.5 * np.pi
        for direction in (1.0, -1.0):
            # right-hand traffic: the +axis direction drives on the side of smaller cross coord
            # along x (y < centre), and of larger cross coord along y (x > centre)
            side = -direction if r.axis == 0 else direction
            heading = base_heading + (0.0 if direction > 0 else np.pi)
            for lane in range(r.lanes):
                cross = r.center + side * lw * (lane + 0.5)
                speed = rng.uniform(*prm.vehicle_speed) * (rng.random() > 0.15)
                a = a_lo + rng.exponential(prm.vehicle_spacing / density)
                while a < a_hi:
                    size = [rng.uniform(*d) for d in _DIMS[VEHICLE]]
                    if rng.random() < 0.1:  # truck / bus
                        size = [rng.uniform(8.0, 12.0), 2.5, 3.2]
                    cand.append((VEHICLE, a, cross, heading, direction * speed, *size,
                                 r.axis))
                    a += size[0] + 2.0 + rng.exponential(prm.vehicle_spacing / density)
            # pedestrians on the sidewalk of this side
            n_ped = rng.poisson(prm.pedestrians_per_100m * density * (a_hi - a_lo) / 100)
            for _ in range(n_ped):
                cross = r.center + side * (r.lanes * lw + rng.uniform(0.6, sw - 0.6))
                a = rng.uniform(a_lo, a_hi)
                size = [rng.uniform(*d) for d in _DIMS[PEDESTRIAN]]
                cand.append((PEDESTRIAN, a, cross, heading, direction * rng.uniform(0.8, 1.6),
                             *size, r.axis))
    if not cand:
        return dict(cls=np.zeros(0, np.uint8), xy=np.zeros((0, len(t), 2)),
                    heading=np.zeros(0), size=np.zeros((0, 3)), velocity=np.zeros((0, 2)))
    c = np.array(cand, np.float64)
    axis = c[:, 8].astype(int)
    along = c[:, 1][:, None] + c[:, 4][:, None] * t[None]  # (N, T)
    cross = np.broadcast_to(c[:, 2][:, None], along.shape)
    xy = np.where(axis[:, None, None] == 0, np.stack([along, cross], -1),
                  np.stack([cross, along], -1))  # (N, T, 2)
    half = np.where(axis[:, None] == 0, c[:, [5, 6]], c[:, [6, 5]]) / 2 + 0.3  # (N, 2) + gap
    # drop agents that touch the ego (a 5 x 2.4 m box around its centre, any heading)
    ego_gap = np.abs(xy - ego_xy[None]) < (half + 3.0)[:, None]  # (N, T, 2)
    keep = ~ego_gap.all(-1).any(-1)
    # greedy: keep an agent if it overlaps no kept agent in any frame
    order = rng.permutation(np.nonzero(keep)[0])
    kept: List[int] = []
    for i in order:
        if kept:
            k = np.array(kept)
            ov = (np.abs(xy[k] - xy[i][None]) < (half[k] + half[i])[:, None]).all(-1).any(-1)
            if ov.any():
                continue
        kept.append(i)
    k = np.sort(np.array(kept, int))
    heading = c[k, 3]
    vel = np.where(axis[k][:, None] == 0, np.stack([c[k, 4], 0 * c[k, 4]], 1),
                   np.stack([0 * c[k, 4], c[k, 4]], 1))
    return dict(cls=c[k, 0].astype(np.uint8), xy=xy[k], heading=heading, size=c[k][:, 5:8],
                velocity=vel)
