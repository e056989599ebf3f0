"""The ego's path: a straight segment, a quarter circle and a straight segment."""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .params import SCENARIOS, CityParams


def pose_from_xyyaw(x, y, yaw) -> np.ndarray:
    """(T, 4, 4) world-from-ego poses from planar positions and headings (T,)."""
    x, y, yaw = (np.asarray(a, np.float64) for a in (x, y, yaw))
    poses = np.tile(np.eye(4), (len(x), 1, 1))
    c, s = np.cos(yaw), np.sin(yaw)
    poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = c, -s, s, c
    poses[:, 0, 3], poses[:, 1, 3] = x, y
    return poses


@dataclass
class Road:
    """An axis-aligned road: ``axis`` 0 runs along x (centre at y = ``center``), 1 along y."""
    axis: int
    center: float
    lanes: int  # lanes per direction


def ego_path(scenario: str, num_frames: int, frame_rate: float, rng: np.random.Generator,
             prm: CityParams, speed: Optional[float] = None):
    """World-frame ego path and the two roads it uses.

    The ego starts at x = 0 heading +x in lane ``i`` of a road along x (right-hand traffic:
    lanes of the +x direction lie at y < centre). ``left`` / ``right`` turn by a quarter
    circle onto the crossing road (heading +y / -y) after about a quarter of the travel;
    ``straight`` crosses the intersection; ``stop`` waits before it for the whole sequence.

    Returns:
        (x, y, yaw) arrays (T,), the ego road, the crossing road.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f'synthetic city: unknown scenario {scenario!r}; expected {SCENARIOS}')
    lw = prm.lane_width
    n_h, n_v = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    lane, lane2 = int(rng.integers(0, n_h)), int(rng.integers(0, n_v))
    v = float(rng.uniform(*prm.ego_speed)) if speed is None else float(speed)
    if scenario == 'stop':
        v = 0.0
    t = np.arange(num_frames) / frame_rate
    s = v * t  # arc length travelled (T,)
    travel = v * max(t[-1], 1e-9)
    y0 = -lw * (lane + 0.5)
    road_h = Road(0, 0.0, n_h)
    half_v = n_v * lw + prm.sidewalk_width  # crossing road + sidewalk half-width
    if scenario in ('straight', 'stop'):
        # straight: cross the intersection mid-way; stop: wait 3.5 m before its crosswalk
        x_vc = 0.5 * travel + 2.0 if scenario == 'straight' else half_v + 3.5
        x, y, yaw = s, np.full_like(s, y0), np.zeros_like(s)
        return (x, y, yaw), road_h, Road(1, x_vc, n_v)
    left = scenario == 'left'
    if left:
        radius = lw * (lane + 0.5) + lw * (lane2 + 0.5) + float(rng.uniform(2.0, 5.0))
    else:
        radius = float(rng.uniform(4.0, 7.0))
    xs = 0.25 * travel  # the arc starts after a quarter of the travel
    sign = 1.0 if left else -1.0
    x_vc = xs + radius - sign * lw * (lane2 + 0.5)  # crossing road centre
    arc = 0.5 * np.pi * radius
    phi = np.clip((s - xs) / radius, 0.0, 0.5 * np.pi)  # turned angle (T,)
    x = np.where(s < xs, s, xs + radius * np.sin(phi))
    y = np.where(s < xs, y0, y0 + sign * radius * (1 - np.cos(phi)))
    after = np.maximum(s - xs - arc, 0.0)  # straight run after the arc
    y = y + sign * after
    return (x, y, sign * phi), road_h, Road(1, x_vc, n_v)
