"""A procedural 4D city: driving sequences of semantic voxels with real structure.

Each sequence is generated from a seed, in three steps, all vectorised numpy:

1. **Ego path** (:func:`ego_path`): the ego drives on the right-hand lane of a road and goes
   straight, turns left or right at an intersection, or waits stopped at it. The path is a
   straight segment, a quarter circle and a straight segment, sampled at the frame rate.
2. **World** (:func:`build_world`): a bird's-eye raster, larger than the grid, around that
   path: a Manhattan road network (the ego's road and crossing road plus random blocks),
   lanes with centre and dashed lane lines, sidewalks with street lights, trees and traffic
   signs, blocks of buildings or parks (terrain, trees, bushes, fences), and agents:
   vehicles that drive along their lanes and pedestrians that walk along the sidewalks,
   with no two agents (nor an agent and the ego) overlapping in any frame.
3. **Frames** (:func:`render_frames`): every frame is rendered in the EGO frame, as in the
   real datasets: the voxel centres of the grid are moved by the ego pose into the world and
   read from the raster (nearest neighbour), so the world scrolls and rotates under the ego.
   A column is ground (one voxel thick) plus up to two static layers (class, bottom, top in
   metres above ground) plus the dynamic layer of that frame. Visibility comes from casting
   BEV rays from the sensor (grid centre) through columns that hold obstacles.

Everything is generated in the canonical vocabulary :data:`CITY_CLASSES` and mapped to any
vocabulary of :mod:`occworld4d.structures.vocabularies` through the tables
:data:`CITY_TO_RAW` (CarlaSC raw 23 classes, Occ3D-nuScenes 18, Occ3D-Waymo 16) and the
named merges of DynamicCity. :class:`SyntheticCityDataset` serves the windows in memory;
``tools/dataset_converters/make_synthetic_city.py`` writes them as real dataset trees.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

from occworld4d.registry import DATASETS, TRANSFORMS
from occworld4d.structures.geometry import command_from_trajectory, trajectory_from_poses
from occworld4d.structures.vocabularies import (MERGES, VOCABULARIES, Vocabulary,
                                                get_vocabulary)
from .transforms.formatting import PackOccInputs

# ----------------------------------------------------------------------------- vocabulary
CITY_CLASSES = ('free', 'road', 'roadline', 'sidewalk', 'terrain', 'building', 'fence',
                'vegetation', 'trunk', 'pole', 'traffic_sign', 'vehicle', 'pedestrian')
(FREE, ROAD, ROADLINE, SIDEWALK, TERRAIN, BUILDING, FENCE, VEGETATION, TRUNK, POLE, SIGN,
 VEHICLE, PEDESTRIAN) = range(len(CITY_CLASSES))
if 'synthetic_city' not in VOCABULARIES:  # make the canonical vocabulary selectable by name
    VOCABULARIES['synthetic_city'] = Vocabulary('synthetic_city', CITY_CLASSES, FREE)

# Canonical class -> raw class name of each format (documented tables, one line per class).
CITY_TO_RAW: Dict[str, Dict[str, str]] = {
    'carlasc_raw': dict(
        free='free', road='road', roadline='roadlines', sidewalk='sidewalk', terrain='terrain',
        building='building', fence='fences', vegetation='vegetation', trunk='vegetation',
        pole='pole', traffic_sign='trafficsign', vehicle='vehicles', pedestrian='pedestrian'),
    'occ3d_nuscenes': dict(
        free='free', road='driveable_surface', roadline='driveable_surface',
        sidewalk='sidewalk', terrain='terrain', building='manmade', fence='barrier',
        vegetation='vegetation', trunk='vegetation', pole='manmade', traffic_sign='manmade',
        vehicle='car', pedestrian='pedestrian'),
    'occ3d_waymo': dict(
        free='FREE', road='ROAD', roadline='ROAD', sidewalk='WALKABLE', terrain='WALKABLE',
        building='BUILDING', fence='GENERALOBJECT', vegetation='VEGETATION',
        trunk='TREE_TRUNK', pole='POLE', traffic_sign='SIGN', vehicle='VEHICLE',
        pedestrian='PEDESTRIAN'),
}
# Vocabularies reached through a raw table and a named merge.
_VIA_MERGE = {'dynamiccity_carlasc': ('carlasc_raw', 'carlasc_to_dynamiccity'),
              'dynamiccity_nuscenes': ('occ3d_nuscenes', 'occ3d_nuscenes_to_dynamiccity'),
              'dynamiccity_waymo': ('occ3d_waymo', 'occ3d_waymo_to_dynamiccity')}


def city_label_lut(vocabulary: str) -> np.ndarray:
    """Lookup table canonical id -> id in ``vocabulary`` (uint8, (len(CITY_CLASSES),)).

    ``vocabulary`` is ``'synthetic_city'``, a raw format (``carlasc_raw``,
    ``occ3d_nuscenes``, ``occ3d_waymo``) or a DynamicCity merge of one of them.
    """
    if vocabulary == 'synthetic_city':
        return np.arange(len(CITY_CLASSES), dtype=np.uint8)
    if vocabulary in CITY_TO_RAW:
        classes = get_vocabulary(vocabulary).classes
        return np.array([classes.index(CITY_TO_RAW[vocabulary][c]) for c in CITY_CLASSES],
                        np.uint8)
    if vocabulary in _VIA_MERGE:
        raw, merge = _VIA_MERGE[vocabulary]
        return MERGES[merge][2][city_label_lut(raw)]
    raise KeyError(f'synthetic city: no label table for vocabulary {vocabulary!r}; expected '
                   f"one of {['synthetic_city', *CITY_TO_RAW, *_VIA_MERGE]}")


# ----------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class CityPreset:
    """Sensor grid and timing of one real dataset."""
    pc_range: Tuple[float, ...]  # (x0, y0, z0, x1, y1, z1) metres, ego frame
    grid_size: Tuple[int, int, int]  # default (X, Y, Z)
    frame_rate: float  # Hz
    ground_z: float  # height of the road surface in the ego frame (m)
    vocabulary: str  # default vocabulary of the dataset


PRESETS: Dict[str, CityPreset] = {
    # CarlaSC: lidar frame, road in the lowest voxel layer, 10 Hz.
    'carlasc': CityPreset((-25.6, -25.6, -2.0, 25.6, 25.6, 1.0), (128, 128, 8), 10.0, -1.8,
                          'dynamiccity_carlasc'),
    # Occ3D-nuScenes: the real frame has driveable_surface only in z layer 0; keyframes 2 Hz.
    'occ3d_nuscenes': CityPreset((-40.0, -40.0, -1.0, 40.0, 40.0, 5.4), (200, 200, 16), 2.0,
                                 -0.8, 'occ3d_nuscenes'),
    # Occ3D-Waymo: vehicle frame origin on the ground (z layer 2; unverified), 10 Hz.
    'occ3d_waymo': CityPreset((-40.0, -40.0, -1.0, 40.0, 40.0, 5.4), (200, 200, 16), 10.0, 0.0,
                              'occ3d_waymo'),
}
SCENARIOS = ('straight', 'left', 'right', 'stop')


@dataclass
class CityParams:
    """Street geometry and traffic of the generator (metres, m/s)."""
    lane_width: float = 3.5  # one lane
    sidewalk_width: float = 3.0
    block_range: Tuple[float, float] = (40.0, 90.0)  # side length of a block
    building_height: Tuple[float, float] = (5.0, 30.0)
    park_probability: float = 0.3  # share of blocks that are parks instead of buildings
    ego_speed: Tuple[float, float] = (6.0, 10.0)
    vehicle_spacing: float = 28.0  # mean gap between vehicles in a lane
    vehicle_speed: Tuple[float, float] = (0.0, 11.0)
    pedestrians_per_100m: float = 3.0  # per sidewalk side
    margin: float = 12.0  # world raster beyond the farthest grid corner


# ----------------------------------------------------------------------------- geometry
def pose_from_xyyaw(x, y, yaw) -> np.ndarray:
    """(T, 4, 4) world-from-ego poses from planar positions and headings (T,)."""
    x, y, yaw = (np.asarray(a, np.float64) for a in (x, y, yaw))
    poses = np.tile(np.eye(4), (len(x), 1, 1))
    c, s = np.cos(yaw), np.sin(yaw)
    poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = c, -s, s, c
    poses[:, 0, 3], poses[:, 1, 3] = x, y
    return poses


# ----------------------------------------------------------------------------- ego path
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


# ----------------------------------------------------------------------------- world
@dataclass
class World:
    """BEV raster of the static city and the agents' tracks.

    Raster arrays are (H, W) = (cells along x, cells along y); cell (i, j) covers
    ``origin + ((i, j) + [0, 1)) * res``. Layer heights are metres above the ground.
    """
    origin: np.ndarray  # (2,) world x, y of the raster corner
    res: float
    ground: np.ndarray  # (H, W) uint8 canonical ground class (road, sidewalk, ...)
    layers: List[Tuple[np.ndarray, np.ndarray, np.ndarray]]  # [(cls, bottom, top)] (H, W) each
    roads: List[Road]
    agents: Dict[str, np.ndarray] = field(default_factory=dict)  # see ``spawn_agents``


def _cells(lo: float, hi: float, origin: float, res: float, n: int) -> slice:
    """Index slice of the cells covering [lo, hi) metres (at least one cell)."""
    a = int(np.floor((lo - origin) / res))
    b = max(int(np.ceil((hi - origin) / res)), a + 1)
    return slice(max(a, 0), max(min(b, n), 0))


class _Painter:
    """Writes axis-aligned rectangles and discs into the world raster."""

    def __init__(self, origin, res, shape):
        self.origin, self.res, self.shape = origin, res, shape
        self.ground = np.full(shape, TERRAIN, np.uint8)
        self.layers = [(np.zeros(shape, np.uint8), np.zeros(shape, np.float32),
                        np.zeros(shape, np.float32)) for _ in range(2)]
        cx = origin[0] + (np.arange(shape[0]) + 0.5) * res
        cy = origin[1] + (np.arange(shape[1]) + 0.5) * res
        self.cx, self.cy = cx[:, None], cy[None, :]  # (H, 1), (1, W) cell centres

    def box(self, x0, x1, y0, y1):
        return (_cells(x0, x1, self.origin[0], self.res, self.shape[0]),
                _cells(y0, y1, self.origin[1], self.res, self.shape[1]))

    def fill(self, x0, x1, y0, y1, ground=None, layer=None, cls=0, bottom=0.0, top=0.0):
        sl = self.box(x0, x1, y0, y1)
        if ground is not None:
            self.ground[sl] = ground
        if layer is not None:
            c, b, t = self.layers[layer]
            c[sl], b[sl], t[sl] = cls, bottom, top

    def tree(self, x, y, radius, base):
        """A trunk (layer 1) under a spherical canopy (layer 0) centred at height base + r."""
        sl = self.box(x - radius, x + radius, y - radius, y + radius)
        d2 = (self.cx[sl[0]] - x) ** 2 + (self.cy[:, sl[1]] - y) ** 2
        inside = d2 <= radius ** 2
        half = np.sqrt(np.maximum(radius ** 2 - d2, 0.0))
        c, b, t = self.layers[0]
        c[sl] = np.where(inside, VEGETATION, c[sl])
        b[sl] = np.where(inside, base + radius - half, b[sl])
        t[sl] = np.where(inside, base + radius + half, t[sl])
        self.fill(x - 0.2, x + 0.2, y - 0.2, y + 0.2, layer=1, cls=TRUNK, bottom=0.0,
                  top=base + radius)


def _road_lines(rng, lo, hi, step):
    """Road centre positions: ``lo`` .. ``hi`` in random block steps, including 0."""
    out, pos = [], 0.0
    while pos > lo:
        pos -= rng.uniform(*step)
        out.append(pos)
    pos = 0.0
    while pos < hi:
        pos += rng.uniform(*step)
        out.append(pos)
    return out


def build_world(path_xy: np.ndarray, road_h: Road, road_v: Road, extent: float, res: float,
                rng: np.random.Generator, prm: CityParams) -> World:
    """Static city raster around an ego path.

    Args:
        path_xy (T, 2): ego positions (m).
        road_h, road_v: the ego's road (along x) and the crossing road (along y).
        extent: half-diagonal of the sensor grid (m); the raster covers the path +- extent.
        res: raster cell size (m); the sensor grid's xy voxel size.
    """
    lw, sw = prm.lane_width, prm.sidewalk_width
    lo = path_xy.min(0) - extent - prm.margin
    hi = path_xy.max(0) + extent + prm.margin
    shape = tuple(int(np.ceil(s)) for s in (hi - lo) / res)
    p = _Painter(lo, res, shape)
    # roads: the ego's two roads plus parallel roads one random block apart
    roads = [road_h, road_v]
    for axis, base in ((0, road_h.center), (1, road_v.center)):
        for off in _road_lines(rng, lo[1 - axis] - base, hi[1 - axis] - base, prm.block_range):
            if abs(off) > 1e-6:
                roads.append(Road(axis, base + off, int(rng.integers(1, 3))))
    cx, cy = p.cx, p.cy
    road = np.zeros(shape, bool)
    walk = np.zeros(shape, bool)
    for r in roads:
        d = np.abs((cy if r.axis == 0 else cx) - r.center)  # distance to the centre line
        road |= np.broadcast_to(d <= r.lanes * lw, shape)
        walk |= np.broadcast_to(d <= r.lanes * lw + sw, shape)
    p.ground[walk] = SIDEWALK
    p.ground[road] = ROAD
    # lane markings (outside intersections): solid centre line, dashed lane lines
    lines = np.zeros(shape, bool)
    for r in roads:
        d = (cy if r.axis == 0 else cx) - r.center
        along = cx if r.axis == 0 else cy
        marks = np.abs(d) < 0.5 * res
        for k in range(1, r.lanes):
            marks = marks | ((np.abs(np.abs(d) - k * lw) < 0.5 * res) & ((along % 6.0) < 3.0))
        lines |= np.broadcast_to(marks, shape)
    cross = np.zeros(shape, bool)
    for r1 in (r for r in roads if r.axis == 0):
        for r2 in (r for r in roads if r.axis == 1):
            cross |= (np.abs(cy - r1.center) <= r1.lanes * lw + sw) & \
                     (np.abs(cx - r2.center) <= r2.lanes * lw + sw)
    p.ground[lines & road & ~cross] = ROADLINE
    # street furniture along sidewalks: lights, street trees, traffic signs near crossings
    for r in roads:
        edge = r.lanes * lw
        a_lo, a_hi = (lo[0], hi[0]) if r.axis == 0 else (lo[1], hi[1])
        for side in (-1.0, 1.0):
            off = r.center + side * (edge + 0.6)  # pole line, 0.6 m behind the curb
            tree_off = r.center + side * (edge + sw - 1.0)
            a = a_lo + rng.uniform(0, 20)
            while a < a_hi:
                kind = rng.random()
                if kind < 0.45:
                    xy = (a, tree_off) if r.axis == 0 else (tree_off, a)
                    if not cross[_idx(p, xy)]:
                        p.tree(*xy, radius=rng.uniform(1.2, 2.2), base=rng.uniform(1.8, 2.6))
                else:
                    xy = (a, off) if r.axis == 0 else (off, a)
                    if not cross[_idx(p, xy)]:
                        h = rng.uniform(4.0, 7.0)
                        p.fill(xy[0] - 0.15, xy[0] + 0.15, xy[1] - 0.15, xy[1] + 0.15,
                               layer=0, cls=POLE, bottom=0.0, top=h)
                        if kind > 0.8:  # a sign panel beside the pole
                            p.fill(xy[0] - 0.4, xy[0] + 0.4, xy[1] - 0.4, xy[1] + 0.4,
                                   layer=1, cls=SIGN, bottom=h - 1.6, top=h - 0.6)
                a += rng.uniform(9.0, 18.0)
    # blocks between roads: buildings or parks
    xs = sorted(r.center + s * (r.lanes * lw + sw) for r in roads if r.axis == 1
                for s in (-1, 1))
    ys = sorted(r.center + s * (r.lanes * lw + sw) for r in roads if r.axis == 0
                for s in (-1, 1))
    xs, ys = [lo[0] - 50] + xs + [hi[0] + 50], [lo[1] - 50] + ys + [hi[1] + 50]
    for bx0, bx1 in zip(xs[0::2], xs[1::2]):
        for by0, by1 in zip(ys[0::2], ys[1::2]):
            _block(p, rng, prm, bx0, bx1, by0, by1)
    return World(lo, res, p.ground, p.layers, roads)


def _idx(p: _Painter, xy) -> Tuple[int, int]:
    i = int(np.clip((xy[0] - p.origin[0]) // p.res, 0, p.shape[0] - 1))
    j = int(np.clip((xy[1] - p.origin[1]) // p.res, 0, p.shape[1] - 1))
    return i, j


def _block(p: _Painter, rng, prm: CityParams, x0, x1, y0, y1):
    """Fill one block [x0, x1] x [y0, y1] (inside the sidewalks)."""
    if x1 - x0 < 8 or y1 - y0 < 8:  # slivers at the raster edge stay terrain
        return
    if rng.random() < prm.park_probability:  # park: terrain, trees, bushes, a fence
        p.fill(x0 + 0.5, x1 - 0.5, y0 + 0.5, y0 + 0.9, layer=0, cls=FENCE, top=1.2)
        p.fill(x0 + 0.5, x1 - 0.5, y1 - 0.9, y1 - 0.5, layer=0, cls=FENCE, top=1.2)
        n = int((x1 - x0) * (y1 - y0) / 80)
        for _ in range(min(n, 200)):
            x, y = rng.uniform(x0 + 3, x1 - 3), rng.uniform(y0 + 3, y1 - 3)
            if rng.random() < 0.7:
                p.tree(x, y, radius=rng.uniform(1.5, 3.0), base=rng.uniform(1.5, 3.0))
            else:
                r = rng.uniform(0.6, 1.5)
                p.fill(x - r, x + r, y - r, y + r, layer=0, cls=VEGETATION,
                       top=rng.uniform(0.6, 1.4))  # a bush
        return
    # buildings: lots along the longer side, with setbacks and gaps of terrain
    setback = rng.uniform(1.0, 4.0)
    long_x = (x1 - x0) >= (y1 - y0)
    a, a_end = (x0, x1) if long_x else (y0, y1)
    a += setback
    while a < a_end - setback - 4:
        width = min(rng.uniform(10.0, 28.0), a_end - setback - a)
        depth_lo, depth_hi = ((y0 + setback, y1 - setback) if long_x else
                              (x0 + setback, x1 - setback))
        if depth_hi - depth_lo > 40:  # deep blocks: two rows with a courtyard
            mid = 0.5 * (depth_lo + depth_hi)
            rows = [(depth_lo, mid - rng.uniform(4, 10)), (mid + rng.uniform(4, 10), depth_hi)]
        else:
            rows = [(depth_lo, depth_hi)]
        for d0, d1 in rows:
            h = rng.uniform(*prm.building_height)
            box = (a, a + width, d0, d1) if long_x else (d0, d1, a, a + width)
            p.fill(*box, layer=0, cls=BUILDING, top=h)
        a += width + rng.uniform(0.0, 4.0)


# ----------------------------------------------------------------------------- agents
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


# ----------------------------------------------------------------------------- rendering
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


# ----------------------------------------------------------------------------- sequence
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


# ----------------------------------------------------------------------------- dataset
@DATASETS.register_module()
class SyntheticCityDataset(BaseDataset):
    """In-memory synthetic driving windows that follow the sample contract.

    Item ``i`` is scene ``i`` generated on the fly from ``(seed, i)``; its scenario cycles
    through ``scenarios``. Labels are mapped to ``vocabulary``.

    Args:
        num_scenes: dataset length.
        num_frames: T frames per window.
        grid_size: (X, Y, Z); default the preset's (e.g. 128 x 128 x 8 for CarlaSC).
        seed: base seed; same seed, same bytes.
        vocabulary: ``'dynamiccity_carlasc'`` | ``'carlasc_raw'`` | ``'occ3d_nuscenes'`` |
            ``'dynamiccity_nuscenes'`` | ``'occ3d_waymo'`` | ``'dynamiccity_waymo'`` |
            ``'synthetic_city'``; default the preset's.
        preset: sensor grid / frame rate (:data:`PRESETS`).
        frame_rate: frames per second (Hz); default the preset's (CarlaSC 10 Hz). E.g. 2.0
            gives OccWorld's 2 Hz keyframe spacing on the CarlaSC grid (0.5 s a frame: the
            same city, ego and agents move 5x farther between frames).
        scenarios: ego behaviours to cycle through.
        masks: visibility masks to attach: ``'valid_mask'`` (CarlaSC: point count > 0),
            ``'mask_lidar'``, ``'mask_camera'``, ``'mask_infov'``.
        pipeline: transforms applied to the window dict of numpy arrays (keys as the
            readers': ``semantics``, masks, ``ego_poses``, ``trajectory``, ``command`` and
            meta keys); empty: packed here into the sample contract.
    """
    MASKS = ('valid_mask', 'mask_lidar', 'mask_camera', 'mask_infov')

    def __init__(self, num_scenes: int = 8, num_frames: int = 16,
                 grid_size: Optional[Sequence[int]] = None, seed: int = 0,
                 vocabulary: Optional[str] = None, preset: str = 'carlasc',
                 scenarios: Sequence[str] = SCENARIOS, masks: Sequence[str] = (),
                 density: float = 1.0, pipeline: Sequence = (), test_mode: bool = False,
                 lazy_init: bool = False, indices=None, frame_rate: Optional[float] = None,
                 **kwargs):
        if preset not in PRESETS:
            raise KeyError(f'SyntheticCityDataset: unknown preset {preset!r}; expected '
                           f'{list(PRESETS)}')
        bad = [s for s in scenarios if s not in SCENARIOS]
        if bad or not scenarios:
            raise ValueError(f'SyntheticCityDataset: scenarios {list(scenarios)} must be a '
                             f'non-empty subset of {SCENARIOS}')
        bad = [m for m in masks if m not in self.MASKS]
        if bad:
            raise ValueError(f'SyntheticCityDataset: unknown masks {bad}; expected {self.MASKS}')
        self.num_scenes, self.num_frames = int(num_scenes), int(num_frames)
        self.preset = preset
        self.grid_size = tuple(int(g) for g in (grid_size or PRESETS[preset].grid_size))
        self.seed, self.scenarios, self.masks = int(seed), tuple(scenarios), tuple(masks)
        self.density = density
        if frame_rate is not None and not float(frame_rate) > 0:
            raise ValueError(f'SyntheticCityDataset: frame_rate must be > 0 Hz, got {frame_rate}')
        self.frame_rate = float(frame_rate or PRESETS[preset].frame_rate)
        self.vocabulary = vocabulary or PRESETS[preset].vocabulary
        self.lut = city_label_lut(self.vocabulary)
        vocab = get_vocabulary(self.vocabulary)
        cfg = PRESETS[preset]
        pc = cfg.pc_range
        metainfo = dict(classes=vocab.classes, free_label=vocab.free_label,
                        pc_range=list(pc), grid_size=list(self.grid_size),
                        voxel_size=[(pc[i + 3] - pc[i]) / self.grid_size[i] for i in range(3)])
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(ann_file='', metainfo=metainfo, serialize_data=False,
                         pipeline=built, test_mode=test_mode, lazy_init=lazy_init,
                         indices=indices, **kwargs)
        # string meta values set here: mmengine would try to open them as meta files
        self._metainfo.update(dataset='synthetic_city', vocabulary=self.vocabulary)

    def load_data_list(self) -> List[dict]:
        return [dict(scene=f'synthetic-{self.seed}-{i:05d}', index=i,
                     scenario=self.scenarios[i % len(self.scenarios)])
                for i in range(self.num_scenes)]

    def load_window(self, info: dict) -> dict:
        """Generate one window as the readers' dict of numpy arrays."""
        seq = generate_sequence(self.num_frames, self.grid_size, self.preset, info['scenario'],
                                seed=self.seed * 1_000_003 + info['index'],
                                frame_rate=self.frame_rate, density=self.density,
                                with_visibility=bool(self.masks))
        out = dict(semantics=self.lut[seq['semantics']], ego_poses=seq['ego_poses'],
                   trajectory=seq['trajectory'], command=int(seq['command']))
        if 'valid_mask' in self.masks:
            out['valid_mask'] = seq['point_counts'] > 0
        if 'mask_lidar' in self.masks:
            out['mask_lidar'] = seq['visible']
        if 'mask_camera' in self.masks:
            out['mask_camera'] = seq['visible']
        if 'mask_infov' in self.masks:
            out['mask_infov'] = seq['infov']
        meta = self.metainfo
        out.update(dataset=meta['dataset'], scene=info['scene'],
                   frame_ids=[f'{t:06d}' for t in range(self.num_frames)],
                   vocabulary=self.vocabulary, free_label=meta['free_label'],
                   voxel_size=meta['voxel_size'], pc_range=meta['pc_range'])
        return out

    def prepare_data(self, idx: int):
        results = self.load_window(self.get_data_info(idx))
        if len(self.pipeline.transforms):
            return self.pipeline(results)
        return pack_window(results)


def pack_window(results: dict) -> dict:
    """Pack a window dict into the sample contract (used with an empty pipeline)."""
    return PackOccInputs()(results)
