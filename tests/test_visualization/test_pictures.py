"""Annotated pictures: legend colours, ego marker, scale bar, >= 512 px, GT | sample | diff."""
import numpy as np
import pytest

from occworld4d.visualization import EGO_COLOUR, get_palette
from occworld4d.visualization.figure import (DIFF_PALETTE, draw_comparison, draw_frame,
                                             nice_length, scene_frames, scene_info)

VOC = 'dynamiccity_carlasc'  # free 0, road 6, vehicle 10


def _scene(T=2, X=32, Y=32, Z=4):
    sem = np.zeros((T, X, Y, Z), np.uint8)
    sem[:, :, :, 0] = 6  # road everywhere
    sem[:, 4, 5, 1] = 10  # a vehicle at (4, 5), above the road
    return sem


def test_nice_length():
    assert nice_length(3.2) == 2.0 and nice_length(20) == 20.0 and nice_length(0.7) == 0.5
    assert nice_length(99) == 50.0 and nice_length(1.0) == 1.0


def test_scene_info_geometry_sources():
    # recorded pc_range: voxel size = range / shape; ego at the origin cell
    info = scene_info(VOC, (32, 32, 4), pc_range=(-12.8, -6.4, -2, 12.8, 19.2, 1.2))
    assert info.voxel_size == pytest.approx((0.8, 0.8, 0.8)) and info.geometry_recorded
    assert info.ego_cell() == pytest.approx((16.0, 8.0, 2.5))
    # nothing recorded: the vocabulary's dataset grid (CarlaSC 51.2 m) over the shape
    info = scene_info(VOC, (32, 32, 4))
    assert info.voxel_size == pytest.approx((1.6, 1.6, 0.75)) and not info.geometry_recorded
    assert 'not recorded' in info.notes[0]
    # Occ3D resized to 32 x 32: 2.5 m voxels
    assert scene_info('occ3d_nuscenes', (32, 32, 4)).voxel_size[0] == pytest.approx(2.5)
    with pytest.raises(ValueError, match='frame_rate'):
        scene_info(VOC, (4, 4, 2), frame_rate=0)


def test_frame_legend_ego_scale_bar_and_size():
    sem = _scene()
    info = scene_info(VOC, sem.shape[1:], voxel_size=(0.4, 0.4, 0.4), frame_rate=2.0)
    layout = {}
    img = draw_frame(sem[0], info, 0, 2, 'bev', height_shading=False, layout=layout)
    panel = layout['panels'][0]
    assert panel.image.shape[:2] == (512, 512)  # 32 voxels x 16 px, nearest-neighbour
    ox, oy = layout['panel_origins'][0]
    pal = get_palette(VOC)
    # the vehicle voxel (4, 5): pixel centre ((32 - 4.5) * 16, (32 - 5.5) * 16)
    assert tuple(img[oy + int(27.5 * 16), ox + int(26.5 * 16)]) == tuple(pal[10])
    assert (img[oy + 27 * 16 + 1:oy + 28 * 16 - 1, ox + 26 * 16 + 1:ox + 27 * 16 - 1]
            == pal[10]).all()
    # the ego marker sits on the ego cell (grid centre, ego at the origin)
    c, r = panel.ego_pixel(info)
    assert (c, r) == (256, 256)
    assert tuple(img[oy + r, ox + c]) == EGO_COLOUR
    assert tuple(img[oy + r - 8, ox + c]) == EGO_COLOUR  # pointing up (+X): tip above
    assert tuple(img[oy + r + 12, ox + c]) != EGO_COLOUR
    # legend: every class colour (free excluded) and the ego colour, in order
    lx, ly = layout['legend_origin']
    centres = [img[ly + (b + d) // 2, lx + (a + c_) // 2] for a, b, c_, d in
               layout['legend_boxes']]
    assert [tuple(x) for x in centres] == [tuple(x) for x in pal[1:]] + [EGO_COLOUR]
    # scale bar: 0.25 * 32 * 0.4 = 3.2 m -> a 2 m bar of 2 / 0.4 * 16 = 80 px (+1 inclusive)
    bar_row = img[oy + 512 - 8 - 6 + 2, ox:ox + 512]
    black = np.flatnonzero((bar_row == 0).all(axis=1))
    assert black[0] == 8 and black[-1] == 8 + 80
    # the header (frame index and time) differs between frames
    img1 = draw_frame(sem[1], info, 1, 2, 'bev', height_shading=False)
    assert not (img[:24] == img1[:24]).all() and (img[30:] == img1[30:]).all()


def test_iso_frame_ego_and_size():
    sem = _scene(T=1)
    info = scene_info(VOC, sem.shape[1:], voxel_size=(0.4, 0.4, 0.4))
    layout = {}
    img = draw_frame(sem[0], info, mode='iso', layout=layout)
    panel = layout['panels'][0]
    assert panel.image.shape[1] >= 512
    ox, oy = layout['panel_origins'][0]
    c, r = panel.ego_pixel(info)
    assert tuple(img[oy + r, ox + c]) == EGO_COLOUR
    road = get_palette(VOC)[6]
    assert ((img == road).all(axis=2)).sum() > 1000  # road tops drawn in the class colour


def test_comparison_difference_codes():
    gt = _scene(T=1)[0]
    pred = gt.copy()
    pred[4, 5, 1] = 0          # vehicle missed
    pred[20, 20, 1] = 10       # extra vehicle
    pred[10, 10, 0] = 7        # road -> ground: wrong class
    info = scene_info(VOC, gt.shape, voxel_size=(0.4, 0.4, 0.4))
    layout = {}
    img = draw_comparison(gt, pred, info, height_shading=False, layout=layout)
    assert len(layout['panels']) == 3
    ox, oy = layout['panel_origins'][2]

    def at(x, y):
        return tuple(img[oy + int((32 - x - 0.5) * 16), ox + int((32 - y - 0.5) * 16)])
    assert at(4, 5) == tuple(DIFF_PALETTE[3])    # missed (GT only)
    assert at(20, 20) == tuple(DIFF_PALETTE[2])  # extra (sample only)
    assert at(10, 10) == tuple(DIFF_PALETTE[4])  # wrong class
    assert at(25, 3) == tuple(DIFF_PALETTE[1])   # agree
    # the legend adds the four difference colours after the classes and the ego
    lx, ly = layout['legend_origin']
    last = [tuple(img[ly + (b + d) // 2, lx + (a + c) // 2])
            for a, b, c, d in layout['legend_boxes'][-4:]]
    assert last == [tuple(x) for x in DIFF_PALETTE[1:]]
    with pytest.raises(ValueError, match='one shape'):
        scene_frames(gt[None], info, gt=gt[None, :16])


def test_future_path_drawn_from_trajectory():
    sem = _scene(T=3)
    traj = np.array([[0, 0, 0], [2.0, 0, 0], [4.0, 0, 0]])  # straight ahead, 2 m per frame
    info = scene_info(VOC, sem.shape[1:], voxel_size=(0.4, 0.4, 0.4), trajectory=traj)
    layout = {}
    img = draw_frame(sem[0], info, 0, 3, height_shading=False, layout=layout)
    ox, oy = layout['panel_origins'][0]
    # frame 2's position, 4 m ahead = 10 voxels = 160 px above the ego
    assert tuple(img[oy + 256 - 160, ox + 256]) == EGO_COLOUR
    img2 = draw_frame(sem[2], info, 2, 3, height_shading=False)  # the last frame: no path
    assert tuple(img2[oy + 256 - 160, ox + 256]) != EGO_COLOUR
    # a left turn: the path bends to +Y (left in the image)
    traj = np.array([[0, 0, 0], [2.0, 0, 0], [3.0, 2.0, 0.5]])
    info = scene_info(VOC, sem.shape[1:], voxel_size=(0.4, 0.4, 0.4), trajectory=traj)
    img3 = draw_frame(sem[0], info, 0, 3, height_shading=False)
    assert tuple(img3[oy + 256 - 120, ox + 256 - 80]) == EGO_COLOUR
