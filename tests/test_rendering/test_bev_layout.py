"""BEV layout rasterization on hand-made boxes, polygons and grids; real infos conversion."""
import os.path as osp

import numpy as np
import pytest
import torch

from occworld4d.registry import TASK_UTILS
from occworld4d.rendering.bev_layout import (LAYOUT_CHANNELS, BEVGrid, box_channel,
                                             boxes_from_info, collapse_layout,
                                             layout_from_occupancy, occupancy_channel_lut,
                                             rasterize_boxes, rasterize_map, rasterize_polygon,
                                             uniscene_layout)
from occworld4d.structures.nuscenes_infos import load_info_frames
from occworld4d.structures.vocabularies import VOCABULARIES

CH = {name: i for i, name in enumerate(LAYOUT_CHANNELS)}
SMALL = BEVGrid((-2.0, 2.0), (-2.0, 2.0), 0.4)  # 10 x 10 cells


def cells(mask):
    return set(map(tuple, np.argwhere(mask).tolist()))


def test_grid_geometry():
    assert BEVGrid().shape == (200, 200)
    assert BEVGrid(resolution=0.8).shape == (100, 100)
    cx, cy = BEVGrid().cell_centers()
    assert (cx[0, 0], cy[0, 0]) == pytest.approx((-39.8, -39.8))
    assert cx[199, 5] == pytest.approx(39.8) and cy[5, 199] == pytest.approx(39.8)
    assert BEVGrid().cell_of(0.1, -0.1) == (100, 99)


def test_axis_aligned_box_covers_exact_cells_in_its_class_channel():
    # 1.2 m long (x) x 0.4 m wide box centred at (0.6, -1.0): x in [0, 1.2], y in [-1.2, -0.8].
    out = rasterize_boxes(np.array([[0.6, -1.0, 0.5, 1.2, 0.4, 1.5, 0.0]]), ['car'], SMALL)
    assert out.shape == (len(LAYOUT_CHANNELS), 10, 10)
    # Cell centres x = 0.2, 0.6, 1.0 (i = 5, 6, 7); y = -1.0 (j = 2).
    assert cells(out[CH['vehicle']]) == {(5, 2), (6, 2), (7, 2)}
    assert out.sum() == 3  # nothing in other channels


def test_rotated_box_covers_the_rotated_cells():
    # Same box rotated by 90 degrees: now 1.2 m along y, 0.4 m along x.
    box = np.array([[0.2, 0.2, 0.0, 1.2, 0.4, 1.0, np.pi / 2]])
    out = rasterize_boxes(box, ['pedestrian'], SMALL)
    # x = 0.2 (i = 5); y in [-0.4, 0.8] -> centres -0.2, 0.2, 0.6 (j = 4, 5, 6).
    assert cells(out[CH['pedestrian']]) == {(5, 4), (5, 5), (5, 6)}
    # 45 degrees: a 1.7 m x 0.3 m bar along the diagonal covers the diagonal cells only.
    bar = np.array([[0.0, 0.0, 0.0, 1.7, 0.3, 1.0, np.pi / 4]])
    diag = rasterize_boxes(bar, ['truck'], SMALL, min_one_cell=False)[CH['vehicle']]
    assert cells(diag) == {(4, 4), (5, 5), (3, 3), (6, 6)}
    anti = rasterize_boxes(bar * [1, 1, 1, 1, 1, 1, -1], ['truck'], SMALL,
                           min_one_cell=False)[CH['vehicle']]
    assert cells(anti) == {(4, 5), (5, 4), (3, 6), (6, 3)}


def test_tiny_box_keeps_its_centre_cell_and_names_map_to_channels():
    cone = np.array([[1.05, -0.35, 0, 0.1, 0.1, 0.5, 0.3]])
    assert cells(rasterize_boxes(cone, ['traffic_cone'], SMALL)[CH['pole']]) == {(7, 4)}
    assert rasterize_boxes(cone, ['traffic_cone'], SMALL, min_one_cell=False).sum() == 0
    assert box_channel('vehicle.motorcycle') == 'bicycle'
    assert box_channel('vehicle.bus.bendy') == 'vehicle'
    assert box_channel('human.pedestrian.adult') == 'pedestrian'
    assert box_channel('movable_object.trafficcone') == 'pole'
    assert box_channel('static_object.bicycle_rack') == 'other'
    with pytest.raises(ValueError, match='names differ'):
        rasterize_boxes(np.zeros((2, 7)), ['car'], SMALL)
    with pytest.raises(ValueError, match=r'\(N, 7\+\)'):
        rasterize_boxes(np.zeros((2, 5)), ['car', 'car'], SMALL)
    assert rasterize_boxes(np.zeros((0,)), [], SMALL).sum() == 0
    # A frame without annotations: empty gt_boxes -> an empty layout.
    info = dict(gt_boxes=np.zeros((0, 7)), gt_names=np.array([]), lidar2ego_rotation=[1, 0, 0, 0],
                lidar2ego_translation=[0, 0, 0])
    boxes, names = boxes_from_info(info)
    assert boxes.shape == (0, 7) and names == []


def test_polygon_and_map_layers():
    tri = np.array([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]])  # lower-left triangle x + y < 0
    mask = rasterize_polygon(tri, SMALL)
    cx, cy = SMALL.cell_centers()
    np.testing.assert_array_equal(mask, cx + cy < 0)
    road = np.zeros(SMALL.shape, bool)
    road[:, :3] = True
    out = rasterize_map({'drivable_area': road, 'walkway': [tri]}, SMALL)
    np.testing.assert_array_equal(out[CH['road']], road)
    np.testing.assert_array_equal(out[CH['sidewalk']], mask)
    with pytest.raises(KeyError, match='unknown layout channel'):
        rasterize_map({'lakes': road}, SMALL)


def test_layout_from_occupancy_for_every_vocabulary():
    for name, voc in VOCABULARIES.items():
        lut = occupancy_channel_lut(name)
        assert lut[voc.free_label] == -1
        assert (lut[:voc.num_classes] >= 0).sum() >= voc.num_classes - 2, name
    sem = np.full((4, 3, 5), 17, np.uint8)
    sem[0, 0, 0] = 11  # driveable surface
    sem[0, 0, 2] = 4   # car above the road in the same column
    sem[1, 2, 4] = 16  # vegetation
    sem[3, 1, 1] = 13  # sidewalk
    lay = layout_from_occupancy(sem, 'occ3d_nuscenes')
    assert lay.shape == (len(LAYOUT_CHANNELS), 4, 3)
    assert cells(lay[CH['road']]) == {(0, 0)} and cells(lay[CH['vehicle']]) == {(0, 0)}
    assert cells(lay[CH['vegetation']]) == {(1, 2)} and cells(lay[CH['sidewalk']]) == {(3, 1)}
    assert lay.sum() == 4
    carla = np.zeros((2, 2, 2), np.uint8)  # carlasc_raw: 0 free
    carla[0, 1, 0] = 6  # roadlines -> road
    carla[1, 0, 1] = 10  # vehicles -> vehicle
    lay = layout_from_occupancy(carla[None].repeat(3, 0), 'carlasc_raw')  # (T, C, X, Y)
    assert lay.shape == (3, len(LAYOUT_CHANNELS), 2, 2)
    assert cells(lay[2, CH['road']]) == {(0, 1)} and cells(lay[0, CH['vehicle']]) == {(1, 0)}
    waymo = np.full((1, 1, 2), 15, np.uint8)
    waymo[0, 0, 1] = 14  # WALKABLE
    assert layout_from_occupancy(waymo, 'occ3d_waymo')[CH['sidewalk'], 0, 0]


def test_collapse_priority_and_uniscene_pooling():
    lay = np.zeros((len(LAYOUT_CHANNELS), 8, 8), bool)
    lay[CH['road']] = True
    lay[CH['vehicle'], 1, 1] = True
    lay[CH['pedestrian'], 1, 1] = True  # pedestrian drawn over vehicle
    lay[CH['sidewalk'], 6, 7] = True
    sem = collapse_layout(lay)
    assert sem.shape == (8, 8) and sem.dtype == torch.int64
    assert sem[0, 0] == CH['road'] + 1 and sem[1, 1] == CH['pedestrian'] + 1
    assert sem[6, 7] == CH['sidewalk'] + 1
    assert collapse_layout(np.zeros((3, 2, 2), bool)).eq(0).all()
    pooled = uniscene_layout(lay, out_size=2)
    assert pooled.dtype == torch.float32
    assert pooled.tolist() == [[CH['pedestrian'] + 1, 1], [1, CH['sidewalk'] + 1]]
    full = uniscene_layout(np.zeros((2, len(LAYOUT_CHANNELS), 200, 200), bool))
    assert full.shape == (2, 50, 50)
    with pytest.raises(ValueError, match='multiples'):
        uniscene_layout(np.zeros((3, 10, 10), bool), out_size=3)


def test_real_vad_infos_boxes_match_bevdet_ego_boxes(real_root):
    infos = load_info_frames(osp.join(real_root, 'nuscenes', 'infos',
                                      'nuscenes_mini_infos_val.pkl'))
    assert len(infos) == 81
    pos_err, yaw_err, dim_err = [], [], []
    for info in infos[::8]:
        boxes, names = boxes_from_info(info)
        ann = np.asarray(info['ann_infos'][0])  # BEVDet ego-frame (x, y, z, l, w, h, yaw, ...)
        for box in boxes:
            j = np.argmin(np.linalg.norm(ann[:, :2] - box[:2], axis=1))
            pos_err.append(np.linalg.norm(ann[j, :2] - box[:2]))
            yaw_err.append(abs((box[6] - ann[j, 6] + np.pi) % (2 * np.pi) - np.pi))
            dim_err.append(np.abs(ann[j, 3:6] - box[3:6]).max())
    # The two conversions agree (up to the sweep/keyframe timing offset of ~0.2 m).
    assert np.median(pos_err) < 0.5 and np.median(yaw_err) < 0.01 and np.median(dim_err) == 0
    rast = TASK_UTILS.build(dict(type='BEVLayoutRasterizer'))
    lay = rast.from_info(infos[0])
    assert lay.shape == (len(LAYOUT_CHANNELS), 200, 200)
    boxes, names = boxes_from_info(infos[0])
    for box, name in zip(boxes, names):
        i, j = BEVGrid().cell_of(box[0], box[1])
        if 0 <= i < 200 and 0 <= j < 200:
            assert lay[CH[box_channel(name)], i, j]
    assert lay[CH['vehicle']].sum() > 20 and lay[CH['pedestrian']].sum() > 5


def test_real_occ3d_frame_layout(real_root):
    sem = np.load(osp.join(real_root, 'occ3d_nuscenes', 'gts', 'scene-1077',
                           '29796060110c4163b07f06eff4af0753', 'labels.npz'))['semantics']
    lay = TASK_UTILS.build(dict(type='BEVLayoutRasterizer')).from_occupancy(sem,
                                                                            'occ3d_nuscenes')
    np.testing.assert_array_equal(lay[CH['road']], (sem == 11).any(-1))
    np.testing.assert_array_equal(lay[CH['vehicle']], np.isin(sem, [3, 4, 5, 9, 10]).any(-1))
    assert uniscene_layout(lay).shape == (50, 50)
