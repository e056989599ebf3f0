"""One driving sequence: ego path, world, agents, a random quarter turn, frames."""
from typing import Dict, Optional, Sequence

import numpy as np

from occworld4d.structures.geometry import command_from_trajectory, trajectory_from_poses
from .agents import spawn_agents
from .ego import ego_path, pose_from_xyyaw
from .params import PRESETS, SCENARIOS, CityParams
from .render import _grid_axes, render_frames
from .world import World, build_world


def generate_sequence(num_frames: int = 16, grid_size: Sequence[int] = None,
                      preset: str = 'carlasc', scenario: str = 'straight', seed: int = 0,
                      pc_range: Optional[Sequence[float]] = None,
                      frame_rate: Optional[float] = None, ego_speed: Optional[float] = None,
                      density: float = 1.0, with_visibility: bool = True,
                      params: Optional[CityParams] = None) -> Dict:
    """One driving sequence of the synthetic city (deterministic in all arguments).

    Args:
        num_frames: T.
        grid_size: (X, Y, Z); default the preset's. The preset's ``pc_range`` is kept, so
            a smaller grid has larger voxels.
        preset: ``'carlasc'`` | ``'occ3d_nuscenes'`` | ``'occ3d_waymo'`` (:data:`PRESETS`).
        scenario: ``'straight'`` | ``'left'`` | ``'right'`` | ``'stop'``.
        ego_speed: m/s (default random in ``params.ego_speed``; ``stop`` is 0).
        density: traffic multiplier (vehicles and pedestrians).

    Returns:
        dict with ``semantics`` uint8 (T, X, Y, Z) canonical classes, ``ego_poses`` float64
        (T, 4, 4) world-from-ego, ``trajectory`` float32 (T, 3), ``command`` int,
        ``timestamps`` float64 (T,) seconds, ``agents`` (see :func:`spawn_agents`),
        ``scenario``, ``pc_range``, ``voxel_size``, ``ground_z``; with visibility also
        ``visible``, ``point_counts`` and ``infov`` (T, X, Y, Z).
    """
    if preset not in PRESETS:
        raise KeyError(f'synthetic city: unknown preset {preset!r}; expected {list(PRESETS)}')
    cfg = PRESETS[preset]
    grid_size = tuple(int(g) for g in (grid_size or cfg.grid_size))
    if len(grid_size) != 3 or min(grid_size) < 1:
        raise ValueError(f'synthetic city: grid_size must be 3 positive ints, got {grid_size}')
    if num_frames < 1:
        raise ValueError(f'synthetic city: num_frames must be >= 1, got {num_frames}')
    pc_range = tuple(float(v) for v in (pc_range or cfg.pc_range))
    frame_rate = float(frame_rate or cfg.frame_rate)
    prm = params or CityParams()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), SCENARIOS.index(scenario)
                                                        if scenario in SCENARIOS else 99]))
    (x, y, yaw), road_h, road_v = ego_path(scenario, num_frames, frame_rate, rng, prm,
                                           ego_speed)
    # a random rotation of the whole scene (multiples of 90 degrees keep the raster exact)
    quarter = int(rng.integers(0, 4))
    poses = pose_from_xyyaw(x, y, yaw)
    _, _, _, vs = _grid_axes(pc_range, grid_size)
    extent = float(np.hypot(max(abs(pc_range[0]), abs(pc_range[3])),
                            max(abs(pc_range[1]), abs(pc_range[4]))))
    xy = np.stack([x, y], 1)
    world = build_world(xy, road_h, road_v, extent, float(min(vs[0], vs[1])), rng, prm)
    t = np.arange(num_frames) / frame_rate
    world.agents = spawn_agents(world, xy, t, rng, prm, density)
    if quarter:  # rotate poses, raster and agents together
        world, poses = _rotate_scene(world, poses, quarter)
    frames = render_frames(world, poses, pc_range, grid_size, cfg.ground_z, with_visibility,
                           rng)
    traj = trajectory_from_poses(poses)
    frames.update(ego_poses=poses, trajectory=traj, command=command_from_trajectory(traj),
                  timestamps=t, agents=world.agents, scenario=scenario, pc_range=pc_range,
                  voxel_size=tuple(float(v) for v in vs), ground_z=cfg.ground_z,
                  frame_rate=frame_rate)
    return frames


def _rotate_scene(world: World, poses: np.ndarray, quarter: int):
    """Rotate world and poses by ``quarter`` x 90 degrees about the world origin."""
    ang = 0.5 * np.pi * quarter
    rot = np.eye(4)
    rot[:2, :2] = [[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]]
    rot = np.round(rot)
    H, W = world.ground.shape
    corner = world.origin + np.array([H, W]) * world.res
    # new raster corner = min of the rotated corners
    pts = np.array([[world.origin[0], world.origin[1]], [corner[0], corner[1]]]) @ rot[:2, :2].T
    origin = pts.min(0)

    def rot_a(a):  # (H, W) raster rotated counter-clockwise (axis 0 towards axis 1)
        return np.rot90(a, quarter).copy()

    ag = dict(world.agents)
    if len(ag.get('cls', ())):
        ag['xy'] = ag['xy'] @ rot[:2, :2].T
        ag['heading'] = ag['heading'] + ang
        ag['velocity'] = ag['velocity'] @ rot[:2, :2].T
    new = World(origin, world.res, rot_a(world.ground),
                [tuple(rot_a(a) for a in layer) for layer in world.layers], world.roads, ag)
    return new, rot[None] @ poses
