"""BEV layouts: 3D boxes, map masks and semantic occupancy rasterized into class-group maps.

A layout is a boolean map ``(C, H, W)`` over a BEV grid, one channel per class group, with
``H`` along ego X and ``W`` along ego Y (cell ``(i, j)`` has its centre at
``(x_min + (i + 0.5) * res, y_min + (j + 0.5) * res)``), i.e. the same (X, Y) axis order as the
voxel grids: ``layout[:, i, j]`` describes voxel column ``semantics[i, j, :]``. The default
grid is Occ3D's: 200 x 200 cells of 0.4 m over [-40, 40] m.

Channel order (``LAYOUT_CHANNELS``; also the priority of :func:`collapse_layout`, later
channels drawn over earlier ones, so objects lie on top of the map):

    0 road        drivable area (map ``drivable_area``, ``carpark_area``; occupancy road)
    1 crossing    pedestrian crossing (map ``ped_crossing``; never from occupancy)
    2 sidewalk    walkway / sidewalk / walkable
    3 ground      other flat ground, terrain
    4 building    buildings, man-made structures, walls of the scene
    5 vegetation  vegetation, tree trunks
    6 barrier     barriers, fences, guard rails
    7 pole        poles, signs, traffic lights, traffic cones
    8 other       other / general objects
    9 vehicle     cars, trucks, buses, trailers, construction vehicles
    10 bicycle    bicycles, motorcycles, cyclists
    11 pedestrian pedestrians

Sources: boxes (``(N, 7)`` centre x, y, z, length, width, height, yaw in the ego frame) with
class names; map layers as masks or polygons; or a semantic grid of any known vocabulary
(:func:`occupancy_channel_lut`). UniScene's conditioning map is :func:`uniscene_layout`: the
layout collapsed to one channel of class indices (:func:`collapse_layout`) and max-pooled to
50 x 50.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from occworld4d.registry import TASK_UTILS
from occworld4d.structures.geometry import pose_matrix, yaw_of
from occworld4d.structures.vocabularies import get_vocabulary

LAYOUT_CHANNELS = ('road', 'crossing', 'sidewalk', 'ground', 'building', 'vegetation',
                   'barrier', 'pole', 'other', 'vehicle', 'bicycle', 'pedestrian')

# Class name (lower case, any vocabulary) -> layout channel name; None = not drawn.
CLASS_TO_CHANNEL: Dict[str, Optional[str]] = {
    # Occ3D-nuScenes
    'others': 'other', 'barrier': 'barrier', 'bicycle': 'bicycle', 'bus': 'vehicle',
    'car': 'vehicle', 'construction_vehicle': 'vehicle', 'motorcycle': 'bicycle',
    'pedestrian': 'pedestrian', 'traffic_cone': 'pole', 'trailer': 'vehicle',
    'truck': 'vehicle', 'driveable_surface': 'road', 'other_flat': 'ground',
    'sidewalk': 'sidewalk', 'terrain': 'ground', 'manmade': 'building',
    'vegetation': 'vegetation', 'free': None,
    # Occ3D-Waymo
    'generalobject': 'other', 'vehicle': 'vehicle', 'sign': 'pole', 'cyclist': 'bicycle',
    'traffic_light': 'pole', 'pole': 'pole', 'construction_cone': 'pole', 'building': 'building',
    'tree_trunk': 'vegetation', 'road': 'road', 'walkable': 'sidewalk',
    # CarlaSC raw and DynamicCity merges
    'fences': 'barrier', 'other': 'other', 'roadlines': 'road', 'vehicles': 'vehicle',
    'wall': 'barrier', 'trafficsign': 'pole', 'sky': None, 'ground': 'ground',
    'bridge': 'other', 'railtrack': 'ground', 'guardrail': 'barrier', 'trafficlight': 'pole',
    'static': 'other', 'dynamic': 'other', 'water': 'ground',
    # The synthetic city's canonical vocabulary
    'roadline': 'road', 'fence': 'barrier', 'trunk': 'vegetation', 'traffic_sign': 'pole',
}

# nuScenes map-expansion layer -> layout channel.
MAP_LAYER_TO_CHANNEL = {'drivable_area': 'road', 'carpark_area': 'road', 'road_segment': 'road',
                        'lane': 'road', 'ped_crossing': 'crossing', 'walkway': 'sidewalk'}


@dataclass(frozen=True)
class BEVGrid:
    """A BEV raster in the ego frame.

    Attributes:
        x_range, y_range: (min, max) metres.
        resolution: cell size in metres.
    """
    x_range: Tuple[float, float] = (-40.0, 40.0)
    y_range: Tuple[float, float] = (-40.0, 40.0)
    resolution: float = 0.4

    @property
    def shape(self) -> Tuple[int, int]:
        """(H, W) = cells along X, cells along Y."""
        return (int(round((self.x_range[1] - self.x_range[0]) / self.resolution)),
                int(round((self.y_range[1] - self.y_range[0]) / self.resolution)))

    def cell_centers(self) -> Tuple[np.ndarray, np.ndarray]:
        """(H, W) arrays of cell-centre x and y."""
        h, w = self.shape
        xs = self.x_range[0] + (np.arange(h) + 0.5) * self.resolution
        ys = self.y_range[0] + (np.arange(w) + 0.5) * self.resolution
        return np.meshgrid(xs, ys, indexing='ij')

    def cell_of(self, x: float, y: float) -> Tuple[int, int]:
        """(i, j) of the cell containing point (x, y) (may be outside the grid)."""
        return (int(np.floor((x - self.x_range[0]) / self.resolution)),
                int(np.floor((y - self.y_range[0]) / self.resolution)))


def channel_index(name: str, channels: Sequence[str] = LAYOUT_CHANNELS) -> int:
    if name not in channels:
        raise KeyError(f'unknown layout channel {name!r}; expected one of {list(channels)}')
    return list(channels).index(name)


def box_channel(name: str) -> str:
    """Layout channel of a box class: nuScenes detection names (``car``, ``traffic_cone``)
    or raw category names (``vehicle.bus.rigid``, ``human.pedestrian.adult``,
    ``movable_object.barrier``, ``static_object.bicycle_rack``). Unknown -> ``other``."""
    key = name.lower()
    if key in CLASS_TO_CHANNEL and CLASS_TO_CHANNEL[key] is not None:
        return CLASS_TO_CHANNEL[key]
    parts = key.split('.')
    if parts[0] == 'human':
        return 'pedestrian'
    if parts[0] == 'vehicle':
        return 'bicycle' if ('bicycle' in parts or 'motorcycle' in parts) else 'vehicle'
    if parts[0] == 'movable_object':
        if 'barrier' in parts:
            return 'barrier'
        if 'trafficcone' in parts:
            return 'pole'
    return 'other'


def rasterize_boxes(boxes: np.ndarray, names: Sequence[str], grid: BEVGrid = BEVGrid(),
                    channels: Sequence[str] = LAYOUT_CHANNELS,
                    min_one_cell: bool = True) -> np.ndarray:
    """Rasterize rotated boxes into their class channels.

    Args:
        boxes (float, (N, 7+)): centre x, y, z, length (along heading), width, height, yaw
            (radians from ego +x, counter-clockwise) in the ego frame; extra columns ignored.
        names: (N,) class names, mapped with :func:`box_channel`.
        grid: the BEV raster.
        channels: channel names (order of the output).
        min_one_cell: also mark the cell containing the centre, so a box smaller than a cell
            (a traffic cone) is never lost.

    Returns:
        bool (C, H, W): a cell is set when its centre lies inside a box of that channel.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 7)
    if boxes.ndim != 2 or boxes.shape[1] < 7:
        raise ValueError(f'boxes: expected (N, 7+) x, y, z, l, w, h, yaw; found {boxes.shape}')
    if len(names) != len(boxes):
        raise ValueError(f'boxes and names differ in length: {len(boxes)} vs {len(names)}')
    out = np.zeros((len(channels),) + grid.shape, dtype=bool)
    cx, cy = grid.cell_centers()
    h, w = grid.shape
    for box, name in zip(boxes, names):
        ch = box_channel(str(name))
        if ch not in channels:
            continue
        c = channels.index(ch)
        x, y, _, length, width, _, yaw = box[:7]
        # Only the cells of the box's bounding square can be inside it.
        r = 0.5 * np.hypot(length, width)
        i0, j0 = grid.cell_of(x - r, y - r)
        i1, j1 = grid.cell_of(x + r, y + r)
        i0, j0, i1, j1 = max(i0, 0), max(j0, 0), min(i1 + 1, h), min(j1 + 1, w)
        if i0 < i1 and j0 < j1:
            # Cell centres of the window in the box frame (rotate by -yaw).
            dx, dy = cx[i0:i1, j0:j1] - x, cy[i0:i1, j0:j1] - y
            lx = np.cos(yaw) * dx + np.sin(yaw) * dy
            ly = -np.sin(yaw) * dx + np.cos(yaw) * dy
            out[c, i0:i1, j0:j1] |= (np.abs(lx) <= length / 2) & (np.abs(ly) <= width / 2)
        if min_one_cell:
            i, j = grid.cell_of(x, y)
            if 0 <= i < grid.shape[0] and 0 <= j < grid.shape[1]:
                out[c, i, j] = True
    return out


def rasterize_polygon(polygon: np.ndarray, grid: BEVGrid = BEVGrid()) -> np.ndarray:
    """bool (H, W): cells whose centre is inside ``polygon`` ((M, 2) x, y; even-odd rule)."""
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
        raise ValueError(f'polygon: expected (M >= 3, 2) vertices; found {poly.shape}')
    cx, cy = grid.cell_centers()
    inside = np.zeros(grid.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        # Edge crosses the horizontal line through the cell centre, right of the centre?
        # (a ray towards +y in the (x, y) plane; x plays the role of "row").
        crosses = (x0 > cx) != (x1 > cx)
        with np.errstate(divide='ignore', invalid='ignore'):
            y_at = y0 + (cx - x0) * (y1 - y0) / (x1 - x0)
        inside ^= crosses & (cy < y_at)
    return inside


def rasterize_map(layers: Dict[str, Union[np.ndarray, List[np.ndarray]]],
                  grid: BEVGrid = BEVGrid(),
                  channels: Sequence[str] = LAYOUT_CHANNELS) -> np.ndarray:
    """Map layers into channels.

    Args:
        layers: layer name (a channel name or a nuScenes map layer such as ``drivable_area``,
            ``ped_crossing``, ``walkway``) -> a bool mask (H, W) on ``grid``, or a list of
            polygons ((M, 2) x, y in the ego frame).

    Returns:
        bool (C, H, W).
    """
    out = np.zeros((len(channels),) + grid.shape, dtype=bool)
    for layer, value in layers.items():
        ch = MAP_LAYER_TO_CHANNEL.get(layer, layer)
        c = channel_index(ch, channels)
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape == grid.shape \
                and value.dtype == bool:
            out[c] |= value
        else:
            for poly in value:
                out[c] |= rasterize_polygon(poly, grid)
    return out


def boxes_from_info(info: dict, source: str = 'info') -> Tuple[np.ndarray, List[str]]:
    """Boxes of one info frame in the ego frame, as (N, 7) x, y, z, l, w, h, yaw and names.

    Two formats:

    * VAD-style temporal infos (``gt_boxes``, ``gt_names``, ``lidar2ego_rotation`` (w, x, y, z),
      ``lidar2ego_translation``): boxes in the LiDAR frame, dims (w, l, h), heading in the
      mmdet3d 0.x convention ``-yaw_lidar - pi / 2`` (checked against the BEVDet
      ``ann_infos`` ego boxes of the real infos).
    * mmdet3d v1.1 infos (``instances`` with ``bbox_3d`` = LiDAR x, y, z (bottom centre), l, w,
      h, yaw and ``bbox_label_3d``, plus ``lidar_points.lidar2ego``); ``names`` are looked up
      in ``info['_categories']`` (set from the file's metainfo by
      :func:`occworld4d.structures.nuscenes_infos.load_info_frames`).
    """
    if 'gt_boxes' in info:
        for key in ('gt_names', 'lidar2ego_rotation', 'lidar2ego_translation'):
            if key not in info:
                raise KeyError(f'{source}: frame {info.get("token", "?")} has gt_boxes but no '
                               f'{key!r}')
        b = np.asarray(info['gt_boxes'], dtype=np.float64)
        b = b.reshape(0, 7) if b.size == 0 else b
        if b.ndim != 2 or b.shape[1] < 7:
            raise ValueError(f'{source}: gt_boxes must be (N, 7+); found {b.shape}')
        l2e = pose_matrix(info['lidar2ego_rotation'], info['lidar2ego_translation'])
        names = [str(n) for n in info['gt_names']]
        centre = b[:, :3] @ l2e[:3, :3].T + l2e[:3, 3]
        yaw = -b[:, 6] - np.pi / 2 + yaw_of(l2e)
        dims = b[:, [4, 3, 5]]  # (w, l, h) -> (l, w, h)
    elif 'instances' in info:
        try:
            l2e = np.asarray(info['lidar_points']['lidar2ego'], dtype=np.float64)
        except KeyError:
            raise KeyError(f'{source}: mmdet3d v1.1 frame needs lidar_points.lidar2ego') from None
        cats = info.get('_categories', {})
        inst = info['instances']
        b = np.asarray([i['bbox_3d'] for i in inst], dtype=np.float64).reshape(-1, 7)
        names = [cats.get(int(i['bbox_label_3d']), 'other') for i in inst]
        bottom = b[:, :3].copy()
        bottom[:, 2] += b[:, 5] / 2  # bottom centre -> gravity centre
        centre = bottom @ l2e[:3, :3].T + l2e[:3, 3]
        yaw = b[:, 6] + yaw_of(l2e)
        dims = b[:, 3:6]
    else:
        raise KeyError(f'{source}: a frame needs "gt_boxes" + "gt_names" (VAD-style infos) or '
                       f'"instances" (mmdet3d v1.1); found keys {sorted(info)}')
    yaw = (yaw + np.pi) % (2 * np.pi) - np.pi
    return np.concatenate([centre, dims, yaw[:, None]], axis=1), names


def occupancy_channel_lut(vocabulary: str, channels: Sequence[str] = LAYOUT_CHANNELS,
                          extra: Optional[Dict[str, Optional[str]]] = None) -> np.ndarray:
    """Lookup table label id -> channel index (-1 = not drawn) for a vocabulary.

    Args:
        vocabulary: a name in :mod:`occworld4d.structures.vocabularies`.
        extra: additional / overriding class name -> channel name (None = not drawn).

    Returns:
        int64 (256,): ids beyond the vocabulary and its free label map to -1.
    """
    voc = get_vocabulary(vocabulary)
    table = dict(CLASS_TO_CHANNEL, **(extra or {}))
    lut = np.full(256, -1, dtype=np.int64)
    unknown = [n for n in voc.classes if n.lower() not in table]
    if unknown:
        raise KeyError(f'vocabulary {vocabulary!r}: classes {unknown} have no layout channel; '
                       f'pass extra={{name: channel or None}}')
    for i, name in enumerate(voc.classes):
        ch = table[name.lower()]
        if i != voc.free_label and ch is not None and ch in channels:
            lut[i] = list(channels).index(ch)
    return lut


def layout_from_occupancy(semantics: Union[np.ndarray, torch.Tensor], vocabulary: str,
                          channels: Sequence[str] = LAYOUT_CHANNELS,
                          extra: Optional[Dict[str, Optional[str]]] = None) -> np.ndarray:
    """Layout of a semantic grid: a cell's channel is set if any voxel of its column has a
    class of that group.

    Args:
        semantics (int, (..., X, Y, Z)): e.g. (X, Y, Z) or (T, X, Y, Z).
        vocabulary: the grid's vocabulary name.

    Returns:
        bool (..., C, X, Y): the layout on the grid's own (X, Y) cells.
    """
    sem = np.asarray(semantics.cpu() if isinstance(semantics, torch.Tensor) else semantics)
    if sem.ndim < 3:
        raise ValueError(f'semantics: expected (..., X, Y, Z); found shape {sem.shape}')
    lut = occupancy_channel_lut(vocabulary, channels, extra)
    ch = lut[sem.astype(np.int64) & 255]  # (..., X, Y, Z) channel per voxel, -1 none
    out = np.zeros(sem.shape[:-3] + (len(channels),) + sem.shape[-3:-1], dtype=bool)
    for c in range(len(channels)):
        out[..., c, :, :] = (ch == c).any(-1)
    return out


def collapse_layout(layout: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
    """One-channel semantic map: 1 + index of the last set channel, 0 where none is set.

    Args:
        layout (bool, (..., C, H, W)).

    Returns:
        int64 (..., H, W); with the default channel order, objects win over the map.
    """
    lay = torch.as_tensor(np.asarray(layout) if isinstance(layout, np.ndarray) else layout)
    num = lay.shape[-3]
    ids = torch.arange(1, num + 1, device=lay.device).view(num, 1, 1)  # (C, 1, 1)
    return (lay.bool().long() * ids).amax(dim=-3)


def uniscene_layout(layout: Union[np.ndarray, torch.Tensor], out_size: int = 50) -> torch.Tensor:
    """UniScene's BEV condition: collapse to one channel, then max-pool to ``out_size``.

    Args:
        layout (bool, (..., C, H, W)) with H and W multiples of ``out_size`` (200 -> 50).

    Returns:
        float32 (..., out_size, out_size): the highest-priority class index per block.
    """
    sem = collapse_layout(layout).float()  # (..., H, W)
    h, w = sem.shape[-2:]
    if h % out_size or w % out_size:
        raise ValueError(f'layout of {h} x {w} cells cannot be max-pooled to {out_size} x '
                         f'{out_size}: sizes must be multiples')
    lead = sem.shape[:-2]
    pooled = F.max_pool2d(sem.reshape(-1, 1, h, w), kernel_size=(h // out_size, w // out_size))
    return pooled.reshape(lead + (out_size, out_size))  # (..., out, out)


@TASK_UTILS.register_module()
class BEVLayoutRasterizer:
    """Config-buildable front end: ``dict(type='BEVLayoutRasterizer', resolution=0.4)``.

    Args:
        x_range, y_range, resolution: the BEV grid (:class:`BEVGrid`).
        channels: channel names, in output order.
    """

    def __init__(self, x_range=(-40.0, 40.0), y_range=(-40.0, 40.0), resolution=0.4,
                 channels: Sequence[str] = LAYOUT_CHANNELS):
        self.grid = BEVGrid(tuple(x_range), tuple(y_range), resolution)
        self.channels = tuple(channels)

    def from_info(self, info: dict, map_layers: Optional[dict] = None,
                  source: str = 'info') -> np.ndarray:
        """bool (C, H, W) from an info frame's boxes (and optional map layers)."""
        boxes, names = boxes_from_info(info, source)
        out = rasterize_boxes(boxes, names, self.grid, self.channels)
        if map_layers:
            out |= rasterize_map(map_layers, self.grid, self.channels)
        return out

    def from_occupancy(self, semantics, vocabulary: str) -> np.ndarray:
        """bool (..., C, X, Y) from a semantic grid whose columns are this grid's cells."""
        sem_shape = tuple(np.shape(semantics))[-3:-1]
        if sem_shape != self.grid.shape:
            raise ValueError(f'semantics: (X, Y) = {sem_shape} does not match the BEV grid '
                             f'{self.grid.shape}')
        return layout_from_occupancy(semantics, vocabulary, self.channels)
