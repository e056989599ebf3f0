"""The DDA core and the LiDAR simulator on hand-made grids with known answers."""
import os.path as osp

import numpy as np
import pytest
import torch

from occworld4d.rendering.lidar import LidarScan, LidarSensor, LidarSimulator, load_lidar2ego
from occworld4d.rendering.raycast import GridGeometry, cast_rays, first_hit_reference
from occworld4d.registry import TASK_UTILS

FREE = 17
GEOM = GridGeometry()  # Occ3D: 200 x 200 x 16, 0.4 m, [-40, -40, -1, 40, 40, 5.4]


def empty_grid():
    return torch.full(GEOM.shape, FREE, dtype=torch.long)


def test_geometry_shape_and_centres():
    assert GEOM.shape == (200, 200, 16)
    np.testing.assert_allclose(GEOM.voxel_center((100, 100, 2)), (0.2, 0.2, 0.0), atol=1e-12)
    with pytest.raises(ValueError, match=r'\(200, 200, 16\)'):
        cast_rays(torch.zeros(10, 10, 10, dtype=torch.long), torch.zeros(3),
                  torch.tensor([[1.0, 0, 0]]), GEOM)


def test_axis_ray_hits_wall_at_exact_range_with_its_class():
    grid = empty_grid()
    grid[125, :, :] = 4  # wall of cars occupying x in [10.0, 10.4)
    grid[130, :, :] = 15  # a second wall behind: must not be reported
    origin = torch.tensor([0.2, 0.2, 0.2], dtype=torch.float64)
    dirs = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]], dtype=torch.float64)
    hits = cast_rays(grid, origin, dirs, GEOM, FREE, dtype=torch.float64)
    assert hits.hit.tolist() == [True, False]  # -x leaves the grid without a hit
    assert hits.range[0].item() == pytest.approx(10.0 - 0.2, abs=1e-9)
    assert hits.label[0].item() == 4 and hits.label[1].item() == FREE
    assert hits.voxel[0].tolist() == [125, 100, 2]
    assert hits.voxel[1].tolist() == [-1, -1, -1] and hits.range[1].item() == float('inf')


def test_diagonal_ray_through_corners_stops_at_the_right_voxel():
    grid = empty_grid()
    grid[110, 110, 5] = 7  # on the diagonal from voxel (100, 100, 5)
    grid[105, 104, 5] = 1  # touched only at a corner/edge by the exact diagonal: not a hit
    grid[104, 105, 5] = 1
    origin = torch.tensor(GEOM.voxel_center((100, 100, 5)))
    d = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    hits = cast_rays(grid, origin, d, GEOM, FREE, dtype=torch.float64)
    assert hits.voxel[0].tolist() == [110, 110, 5] and hits.label[0].item() == 7
    # Enters voxel 110 through its corner: 9.5 voxels along each axis.
    assert hits.range[0].item() == pytest.approx(9.5 * 0.4 * np.sqrt(2), abs=1e-9)


def test_float32_corner_ties_far_from_the_origin():
    # Through exact voxel corners, float32 crossing times of x and y differ by rounding; the
    # tie tolerance must still step both axes together (an absolute 4e-7 m alone fails here).
    grid = empty_grid()
    grid[65, 76, 5] = 7  # 60 voxels along the diagonal from voxel (5, 16, 5)
    grid[64, 76, 5] = 1  # touched only at an edge
    grid[65, 75, 5] = 1
    grid[66, 76, 5] = 1  # the edge neighbours on the far side, for the backward ray
    grid[65, 77, 5] = 1
    origin = torch.tensor(GEOM.voxel_center((5, 16, 5)))
    for sign in (1, -1):  # forwards, and backwards from the target's far side
        d = torch.tensor([[1.0, 1.0, 0.0]]) * sign
        start = origin if sign == 1 else torch.tensor(GEOM.voxel_center((125, 136, 5)))
        hits = cast_rays(grid, start, d, GEOM, FREE, dtype=torch.float32)
        assert hits.voxel[0].tolist() == [65, 76, 5] and hits.label[0].item() == 7
        assert hits.range[0].item() == pytest.approx(59.5 * 0.4 * np.sqrt(2), abs=1e-3)


@pytest.mark.parametrize('geom,origin', [
    (GridGeometry((-4.0, -4.0, -1.0, 4.0, 4.0, 2.2), (0.4, 0.4, 0.4)), (0.13, -0.31, 0.57)),
    # CarlaSC-like anisotropic voxels (0.4 x 0.4 x 0.375), origin outside the grid.
    (GridGeometry((-3.2, -3.2, -2.0, 3.2, 3.2, 1.0), (0.4, 0.4, 0.375)), (-4.1, 0.27, 1.9)),
])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_oblique_rays_match_brute_force_marching(geom, origin, dtype):
    rng = np.random.default_rng(0)
    sem = np.full(geom.shape, FREE, dtype=np.int64)
    sem[rng.random(geom.shape) < 0.03] = 3
    origin = np.array(origin)
    lo, hi = np.array(geom.pc_range[:3]), np.array(geom.pc_range[3:])
    dirs = lo + rng.random((40, 3)) * (hi - lo) - origin  # aimed at random points in the grid
    hits = cast_rays(torch.from_numpy(sem), torch.from_numpy(origin), torch.from_numpy(dirs),
                     geom, FREE, dtype=dtype)
    compared = 0
    for r in range(len(dirs)):
        ref = first_hit_reference(sem, origin, dirs[r], geom, FREE, step=2e-4, max_range=20)
        if ref is None:
            assert not hits.hit[r]
            continue
        compared += 1
        assert hits.hit[r]
        assert tuple(hits.voxel[r].tolist()) == ref[1]
        assert abs(hits.range[r].item() - ref[0]) <= 2e-4
    assert compared >= 10


def test_ray_from_outside_enters_grid_and_max_range_drops():
    grid = empty_grid()
    grid[0, 100, 3] = 13
    origin = torch.tensor([-50.0, 0.1, 0.3], dtype=torch.float64)  # 10 m outside, -x side
    d = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    hits = cast_rays(grid, origin, d, GEOM, FREE, dtype=torch.float64)
    assert hits.hit.item() and hits.range.item() == pytest.approx(10.0, abs=1e-9)
    far = cast_rays(grid, origin, d, GEOM, FREE, max_range=9.9, dtype=torch.float64)
    assert not far.hit.item()


def test_min_range_makes_near_voxels_transparent():
    grid = empty_grid()
    grid[100, 100, 4] = 4  # the voxel the sensor sits in (an ego car voxel)
    grid[103, 100, 4] = 1  # entered at x = 1.2, 1.1 m from the origin
    grid[110, 100, 4] = 15  # entered at x = 4.0
    origin = torch.tensor([0.1, 0.1, 0.7], dtype=torch.float64)
    d = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    assert cast_rays(grid, origin, d, GEOM, FREE, dtype=torch.float64).range.item() == 0.0
    near = cast_rays(grid, origin, d, GEOM, FREE, dtype=torch.float64, min_range=0.5)
    assert near.label.item() == 1 and near.range.item() == pytest.approx(1.1, abs=1e-9)
    far = cast_rays(grid, origin, d, GEOM, FREE, dtype=torch.float64, min_range=1.5)
    assert far.label.item() == 15 and far.range.item() == pytest.approx(3.9, abs=1e-9)


def test_lidar_presets_beam_pattern():
    s = LidarSensor.preset('nuscenes_lidar_top')
    el = s.beam_elevations()
    assert s.num_beams == 32 and el[0] == pytest.approx(-30.67) and el[-1] == pytest.approx(10.67)
    dirs = s.ray_directions()
    assert dirs.shape == (32, 1084, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.rad2deg(np.arcsin(dirs[:, 0, 2])), el, atol=1e-9)
    assert LidarSensor.preset('velodyne_hdl64').num_beams == 64
    assert LidarSensor.preset('waymo_top', max_range=50.0).max_range == 50.0
    with pytest.raises(KeyError, match='nuscenes_lidar_top'):
        LidarSensor.preset('nope')


def test_lidar_in_a_closed_room_hits_walls_at_exact_ranges():
    grid = empty_grid()
    grid[:, :, 0] = 11  # ground slab z in [-1, -0.6)
    grid[125, :, :] = 15  # wall at x = 10.0
    grid[75, :, :] = 15  # wall at x = -10.0 (voxel 75 covers [-10, -9.6))
    sensor = LidarSensor(num_beams=1, elevations=(0.0,), num_azimuth=4, max_range=100.0,
                         sensor2ego=tuple(map(tuple, np.eye(4))))
    scan = LidarSimulator(sensor, dtype=torch.float64).simulate(grid)
    # Azimuth 0 (+x): wall at 10.0; 180 deg (-x): face at -9.6; +-y: no walls -> drop.
    assert scan.drop[0].tolist() == [False, True, False, True]
    assert scan.range[0, 0].item() == pytest.approx(10.0, abs=1e-9)
    assert scan.range[0, 2].item() == pytest.approx(9.6, abs=1e-9)
    assert scan.label[0].tolist() == [15, FREE, 15, FREE]
    np.testing.assert_allclose(scan.points[0, 0].numpy(), [10.0, 0.0, 0.0], atol=1e-9)
    assert torch.isnan(scan.points[0, 1]).all()
    pts = scan.valid_points()
    assert pts.shape == (2, 4) and pts[:, 3].tolist() == [15.0, 15.0]


def test_lidar_downward_beams_hit_the_ground_at_geometric_range():
    grid = empty_grid()
    grid[:, :, 0] = 11  # top of the ground at z = -0.6
    sim = LidarSimulator('nuscenes_lidar_top', dtype=torch.float64)
    scan = sim.simulate(grid)
    height = 1.84023 + 0.6
    el = np.deg2rad(sim.sensor.beam_elevations())
    expect = height / np.sin(-el[0])  # lowest beam
    assert scan.range[0].min().item() == pytest.approx(expect, abs=1e-6)
    assert (scan.label[~scan.drop] == 11).all()
    # Up-pointing beams (elevation >= 0) never hit: the grid is open above.
    assert scan.drop[el >= 0].all()


def test_lidar_noise_and_drop_are_seeded():
    grid = empty_grid()
    grid[:, :, 0] = 11
    sensor = LidarSensor.preset('nuscenes_lidar_top', num_azimuth=90, range_noise_std=0.05,
                                drop_prob=0.2)
    a = LidarSimulator(sensor, seed=3).simulate(grid)
    b = LidarSimulator(sensor, seed=3).simulate(grid)
    c = LidarSimulator(sensor, seed=4).simulate(grid)
    exact = LidarSimulator(sensor.preset('nuscenes_lidar_top', num_azimuth=90)).simulate(grid)
    assert torch.equal(a.drop, b.drop) and not torch.equal(a.drop, c.drop)
    keep = ~a.drop
    assert torch.equal(a.range[keep], b.range[keep])
    both = keep & ~exact.drop
    err = (a.range[both] - exact.range[both])
    assert 0.03 < err.std().item() < 0.07
    extra = (a.drop & ~exact.drop).sum().item() / (~exact.drop).sum().item()
    assert 0.12 < extra < 0.28


def test_lidar_simulator_is_registered_and_takes_real_pose(real_root):
    sim = TASK_UTILS.build(dict(type='LidarSimulator', sensor=dict(preset='waymo_top',
                                                                  num_azimuth=360)))
    assert sim.sensor.num_beams == 64 and sim.sensor.num_azimuth == 360
    pkl = osp.join(real_root, 'nuscenes', 'keyframe_scene-0061',
                   'n015-2018-07-24-11-22-45+0800.pkl')
    pose = load_lidar2ego(pkl)
    assert pose.shape == (4, 4) and pose[2, 3] == pytest.approx(1.84, abs=0.01)
    sim = LidarSimulator(LidarSensor.preset('nuscenes_lidar_top').with_pose(pose))
    labels = np.load(osp.join(real_root, 'occ3d_nuscenes', 'gts', 'scene-1077',
                              '29796060110c4163b07f06eff4af0753', 'labels.npz'))['semantics']
    scan = sim.simulate(labels)
    assert isinstance(scan, LidarScan) and scan.range.shape == (32, 1084)
    valid = ~scan.drop
    assert valid.float().mean() > 0.5
    # Every return lies on the closed box of the voxel it reports, at the reported range,
    # and that voxel carries the reported class.
    pts, vox = scan.points[valid].double(), scan.voxel[valid]
    lo = torch.tensor(GEOM.pc_range[:3], dtype=torch.float64) + vox.double() * 0.4
    assert ((pts >= lo - 1e-3) & (pts <= lo + 0.4 + 1e-3)).all()
    grid = torch.from_numpy(labels).long()
    assert torch.equal(grid[vox[:, 0], vox[:, 1], vox[:, 2]], scan.label[valid])
    origin = torch.tensor(pose[:3, 3])
    torch.testing.assert_close((pts - origin).norm(dim=-1), scan.range[valid].double(),
                               atol=1e-3, rtol=0)
    # In the sensor frame, each return sits at its range and on its beam's elevation.
    local = sim.to_sensor_frame(scan.valid_points().double())
    assert torch.equal(local[:, 3], scan.label[valid].double())
    torch.testing.assert_close(local[:, :3].norm(dim=-1), scan.range[valid].double(),
                               atol=1e-3, rtol=0)
    beam = torch.arange(32).view(32, 1).expand(32, 1084)[valid]
    elev = torch.rad2deg(torch.asin(local[:, 2] / local[:, :3].norm(dim=-1)))
    expect = torch.from_numpy(sim.sensor.beam_elevations())[beam]
    torch.testing.assert_close(elev, expect, atol=1e-3, rtol=0)
    assert set(scan.label[valid].unique().tolist()) >= {11, 16}


def test_nuscenes_preset_matches_the_real_lidar_sweep(real_root):
    path = osp.join(real_root, 'nuscenes', 'keyframe_scene-0061',
                    'n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin')
    pts = np.fromfile(path, dtype=np.float32).reshape(-1, 5)  # x, y, z, intensity, ring
    sensor = LidarSensor.preset('nuscenes_lidar_top')
    assert len(pts) == sensor.num_rays == 32 * 1084
    ring = pts[:, 4].astype(int)
    assert np.bincount(ring).tolist() == [1084] * 32
    r = np.linalg.norm(pts[:, :3], axis=1)
    elev = np.rad2deg(np.arcsin(pts[:, 2] / np.maximum(r, 1e-6)))
    far = r > 3.0  # near returns (the ego car) are noisy in elevation
    measured = np.array([np.median(elev[far & (ring == k)]) for k in range(32)])
    np.testing.assert_allclose(measured, sensor.beam_elevations(), atol=0.35)
    assert np.median(np.abs(measured - sensor.beam_elevations())) < 0.1
    assert r.max() <= sensor.max_range + 5


@pytest.mark.gpu
def test_lidar_cuda_matches_cpu(real_root):
    labels = np.load(osp.join(real_root, 'occ3d_nuscenes', 'gts', 'scene-1077',
                              '29796060110c4163b07f06eff4af0753', 'labels.npz'))['semantics']
    sim = LidarSimulator(dtype=torch.float64)
    cpu = sim.simulate(labels)
    gpu = sim.simulate(torch.from_numpy(labels).cuda())
    assert torch.equal(cpu.drop, gpu.drop.cpu())
    assert torch.equal(cpu.label, gpu.label.cpu())
    torch.testing.assert_close(cpu.range[~cpu.drop], gpu.range.cpu()[~cpu.drop])


def test_load_lidar2ego_reads_temporal_infos_and_names_bad_index(real_root):
    """The flat temporal infos carry lidar2ego as quaternion + translation (real mini file)."""
    pkl = osp.join(real_root, 'nuscenes', 'infos', 'nuscenes_mini_infos_val.pkl')
    pose = load_lidar2ego(pkl)
    assert pose.shape == (4, 4) and pose[2, 3] == pytest.approx(1.84, abs=0.01)
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-6)
    with pytest.raises(ValueError, match='out of range'):
        load_lidar2ego(pkl, index=10_000)
