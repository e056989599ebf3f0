"""The static city: a BEV raster of roads, lane lines, street furniture and blocks."""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .classes import (BUILDING, FENCE, POLE, ROAD, ROADLINE, SIDEWALK, SIGN, TERRAIN, TRUNK,
                      VEGETATION)
from .ego import Road
from .params import CityParams


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

    The steps, in the order they draw from ``rng``: the street network
    (:func:`_street_network`), the road and sidewalk surfaces (:func:`_pave`), lane markings
    outside the intersections (:func:`_lane_marks`, :func:`_intersections`), street furniture
    along the sidewalks (:func:`_street_furniture`) and the blocks between the roads
    (:func:`_city_blocks`).

    Args:
        path_xy (T, 2): ego positions (m).
        road_h, road_v: the ego's road (along x) and the crossing road (along y).
        extent: half-diagonal of the sensor grid (m); the raster covers the path +- extent.
        res: raster cell size (m); the sensor grid's xy voxel size.
    """
    lo = path_xy.min(0) - extent - prm.margin
    hi = path_xy.max(0) + extent + prm.margin
    shape = tuple(int(np.ceil(s)) for s in (hi - lo) / res)
    p = _Painter(lo, res, shape)
    roads = _street_network(road_h, road_v, lo, hi, rng, prm)
    road = _pave(p, roads, prm)
    cross = _intersections(p, roads, prm)
    p.ground[_lane_marks(p, roads, prm) & road & ~cross] = ROADLINE
    _street_furniture(p, roads, cross, lo, hi, rng, prm)
    _city_blocks(p, roads, lo, hi, rng, prm)
    return World(lo, res, p.ground, p.layers, roads)


def _street_network(road_h: Road, road_v: Road, lo, hi, rng, prm: CityParams) -> List[Road]:
    """The ego's two roads plus parallel roads one random block apart, inside [lo, hi]."""
    roads = [road_h, road_v]
    for axis, base in ((0, road_h.center), (1, road_v.center)):
        for off in _road_lines(rng, lo[1 - axis] - base, hi[1 - axis] - base, prm.block_range):
            if abs(off) > 1e-6:
                roads.append(Road(axis, base + off, int(rng.integers(1, 3))))
    return roads


def _distance_to(p: '_Painter', r: Road) -> np.ndarray:
    """Signed cross distance (m) of the cell centres to the centre line of ``r``: (H, 1)
    for a road along x, (1, W) along y."""
    return (p.cy if r.axis == 0 else p.cx) - r.center


def _pave(p: '_Painter', roads: List[Road], prm: CityParams) -> np.ndarray:
    """Paint sidewalks and then roads into the ground; the road mask (H, W) bool."""
    lw, sw = prm.lane_width, prm.sidewalk_width
    road = np.zeros(p.shape, bool)
    walk = np.zeros(p.shape, bool)
    for r in roads:
        d = np.abs(_distance_to(p, r))  # distance to the centre line
        road |= np.broadcast_to(d <= r.lanes * lw, p.shape)
        walk |= np.broadcast_to(d <= r.lanes * lw + sw, p.shape)
    p.ground[walk] = SIDEWALK
    p.ground[road] = ROAD
    return road


def _lane_marks(p: '_Painter', roads: List[Road], prm: CityParams) -> np.ndarray:
    """Solid centre lines and dashed lane lines (3 m on, 3 m off) of every road: (H, W) bool."""
    lw = prm.lane_width
    lines = np.zeros(p.shape, bool)
    for r in roads:
        d = _distance_to(p, r)
        along = p.cx if r.axis == 0 else p.cy
        marks = np.abs(d) < 0.5 * p.res
        for k in range(1, r.lanes):
            marks = marks | ((np.abs(np.abs(d) - k * lw) < 0.5 * p.res) & ((along % 6.0) < 3.0))
        lines |= np.broadcast_to(marks, p.shape)
    return lines


def _intersections(p: '_Painter', roads: List[Road], prm: CityParams) -> np.ndarray:
    """Cells where a road along x and a road along y (sidewalks included) overlap: (H, W)."""
    lw, sw = prm.lane_width, prm.sidewalk_width
    cross = np.zeros(p.shape, bool)
    for r1 in (r for r in roads if r.axis == 0):
        for r2 in (r for r in roads if r.axis == 1):
            cross |= (np.abs(p.cy - r1.center) <= r1.lanes * lw + sw) & \
                     (np.abs(p.cx - r2.center) <= r2.lanes * lw + sw)
    return cross


def _street_furniture(p: '_Painter', roads: List[Road], cross: np.ndarray, lo, hi, rng,
                      prm: CityParams) -> None:
    """Street lights, street trees and traffic signs along both sidewalks of every road,
    every 9 to 18 m, none inside an intersection."""
    lw, sw = prm.lane_width, prm.sidewalk_width
    for r in roads:
        edge = r.lanes * lw
        a_lo, a_hi = (lo[0], hi[0]) if r.axis == 0 else (lo[1], hi[1])
        for side in (-1.0, 1.0):
            pole_off = r.center + side * (edge + 0.6)  # pole line, 0.6 m behind the curb
            tree_off = r.center + side * (edge + sw - 1.0)
            a = a_lo + rng.uniform(0, 20)
            while a < a_hi:
                _furniture_item(p, r, a, pole_off, tree_off, cross, rng)
                a += rng.uniform(9.0, 18.0)


def _furniture_item(p: '_Painter', r: Road, a: float, pole_off: float, tree_off: float,
                    cross: np.ndarray, rng) -> None:
    """One item at ``a`` metres along ``r``: a tree (45 %) or a pole, with a sign panel
    beside 20 % of the poles; nothing when it falls into an intersection."""
    kind = rng.random()
    off = tree_off if kind < 0.45 else pole_off
    xy = (a, off) if r.axis == 0 else (off, a)
    if cross[_idx(p, xy)]:
        return
    if kind < 0.45:
        p.tree(*xy, radius=rng.uniform(1.2, 2.2), base=rng.uniform(1.8, 2.6))
        return
    h = rng.uniform(4.0, 7.0)
    p.fill(xy[0] - 0.15, xy[0] + 0.15, xy[1] - 0.15, xy[1] + 0.15,
           layer=0, cls=POLE, bottom=0.0, top=h)
    if kind > 0.8:  # a sign panel beside the pole
        p.fill(xy[0] - 0.4, xy[0] + 0.4, xy[1] - 0.4, xy[1] + 0.4,
               layer=1, cls=SIGN, bottom=h - 1.6, top=h - 0.6)


def _city_blocks(p: '_Painter', roads: List[Road], lo, hi, rng, prm: CityParams) -> None:
    """Fill the blocks between the roads' sidewalks (see :func:`_block`)."""
    lw, sw = prm.lane_width, prm.sidewalk_width
    xs = sorted(r.center + s * (r.lanes * lw + sw) for r in roads if r.axis == 1
                for s in (-1, 1))
    ys = sorted(r.center + s * (r.lanes * lw + sw) for r in roads if r.axis == 0
                for s in (-1, 1))
    xs, ys = [lo[0] - 50] + xs + [hi[0] + 50], [lo[1] - 50] + ys + [hi[1] + 50]
    for bx0, bx1 in zip(xs[0::2], xs[1::2]):
        for by0, by1 in zip(ys[0::2], ys[1::2]):
            _block(p, rng, prm, bx0, bx1, by0, by1)


def _idx(p: _Painter, xy) -> Tuple[int, int]:
    i = int(np.clip((xy[0] - p.origin[0]) // p.res, 0, p.shape[0] - 1))
    j = int(np.clip((xy[1] - p.origin[1]) // p.res, 0, p.shape[1] - 1))
    return i, j


def _block(p: _Painter, rng, prm: CityParams, x0, x1, y0, y1):
    """Fill one block [x0, x1] x [y0, y1] (inside the sidewalks): a park or buildings."""
    if x1 - x0 < 8 or y1 - y0 < 8:  # slivers at the raster edge stay terrain
        return
    if rng.random() < prm.park_probability:
        _park(p, rng, x0, x1, y0, y1)
    else:
        _buildings(p, rng, prm, x0, x1, y0, y1)


def _park(p: _Painter, rng, x0, x1, y0, y1):
    """A park: terrain with trees and bushes (one per 80 m^2, at most 200) and two fences."""
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


def _buildings(p: _Painter, rng, prm: CityParams, x0, x1, y0, y1):
    """Buildings on lots along the block's longer side, with setbacks and gaps of terrain;
    deep blocks get two rows around a courtyard."""
    setback = rng.uniform(1.0, 4.0)
    long_x = (x1 - x0) >= (y1 - y0)
    a, a_end = (x0, x1) if long_x else (y0, y1)
    a += setback
    depth_lo, depth_hi = (y0 + setback, y1 - setback) if long_x else (x0 + setback, x1 - setback)
    while a < a_end - setback - 4:
        width = min(rng.uniform(10.0, 28.0), a_end - setback - a)
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
