"""Camera semantic / depth rendering: known voxels, intrinsics scaling, PNG export, real calib."""
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from occworld4d.rendering.camera import (CameraRenderer, PinholeCamera, cameras_from_info,
                                         depth_to_uint16, load_cameras, read_depth_png,
                                         save_depth_png, save_semantic_png)
from occworld4d.rendering.palette import get_palette
from occworld4d.rendering.raycast import GridGeometry

FREE = 17
GEOM = GridGeometry()
# A forward-looking camera at (0, 0, 1.5): camera z = ego +x, camera x = ego -y, y = ego -z.
CAM2EGO = np.array([[0, 0, 1, 0.0], [-1, 0, 0, 0.0], [0, -1, 0, 1.5], [0, 0, 0, 1]], float)
K = np.array([[100.0, 0, 80.0], [0, 100.0, 45.0], [0, 0, 1]])


def front_camera():
    return PinholeCamera('CAM_TEST', K, CAM2EGO, 160, 90)


def test_depth_of_a_known_voxel_matches_projection_of_its_centre():
    cam = front_camera()
    grid = torch.full(GEOM.shape, FREE, dtype=torch.long)
    for index in [(130, 103, 5), (150, 96, 2), (112, 100, 7)]:
        grid[index] = 4
    maps = CameraRenderer(dtype=torch.float64).render(grid, cam)
    for index in [(130, 103, 5), (150, 96, 2), (112, 100, 7)]:
        u, v, z = cam.project(GEOM.voxel_center(index)[None])[0]
        px, py = int(u), int(v)
        assert maps.hit[py, px] and maps.semantic[py, px].item() == 4
        assert abs(maps.depth[py, px].item() - z) <= 0.4
        # The face seen head-on is 0.2 m in front of the centre along the optical axis.
        assert maps.depth[py, px].item() == pytest.approx(z - 0.2, abs=0.05)
    # Nothing else is hit: pixels without voxels are free with depth 0.
    assert (maps.semantic[~maps.hit] == FREE).all() and (maps.depth[~maps.hit] == 0).all()
    assert maps.hit.sum() < 0.05 * maps.hit.numel()


def test_wall_depth_is_planar_and_scaling_keeps_geometry():
    cam = front_camera()
    grid = torch.full(GEOM.shape, FREE, dtype=torch.long)
    grid[125, :, :] = 15  # wall facing the camera at x = 10.0
    maps = CameraRenderer(dtype=torch.float64).render(grid, cam)
    # z-depth of a fronto-parallel wall is constant wherever it is seen.
    d = maps.depth[maps.hit]
    assert d.numel() > 0.5 * maps.hit.numel()
    torch.testing.assert_close(d, torch.full_like(d, 10.0), atol=1e-6, rtol=0)
    small = cam.scaled(0.5)
    assert (small.width, small.height) == (80, 45)
    np.testing.assert_allclose(small.cam2img, [[50, 0, 40], [0, 50, 22.5], [0, 0, 1]])
    m2 = CameraRenderer(dtype=torch.float64).render(grid, small)
    # Same horizon row (ground/wall top) at half resolution.
    top_full = maps.hit.any(1).nonzero()[0].item()
    top_half = m2.hit.any(1).nonzero()[0].item()
    assert abs(top_half - top_full / 2) <= 1


def test_png_export_roundtrip(tmp_path):
    depth = torch.tensor([[0.0, 1.2346], [65.6, 10.0]])
    assert depth_to_uint16(depth).tolist() == [[0, 1235], [65535, 10000]]
    p = save_depth_png(str(tmp_path / 'd.png'), depth)
    img = Image.open(p)
    assert img.mode in ('I;16', 'I') and np.asarray(img).dtype in (np.uint16, np.int32)
    np.testing.assert_allclose(read_depth_png(p), [[0, 1.235], [65.535, 10.0]], atol=1e-3)
    pal = get_palette('occ3d_nuscenes')
    sem = np.array([[11, 17], [4, 200]])
    p = save_semantic_png(str(tmp_path / 's.png'), sem, pal)
    rgb = np.asarray(Image.open(p))
    assert rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == pal[11].tolist() and rgb[0, 1].tolist() == [0, 0, 0]
    assert rgb[1, 0].tolist() == pal[4].tolist() and rgb[1, 1].tolist() == [128, 128, 128]
    assert not list(tmp_path.glob('*.tmp*'))


def test_calibration_errors_name_the_missing_key():
    with pytest.raises(KeyError, match='cam2ego'):
        cameras_from_info({'images': {'CAM_FRONT': {'cam2img': np.eye(3)}}}, source='x.pkl')
    with pytest.raises(KeyError, match='"images"'):
        cameras_from_info({'token': 'a'}, source='x.pkl')
    with pytest.raises(ValueError, match='cam2img'):
        PinholeCamera('c', np.eye(4), np.eye(4), 10, 10)


def _real_paths(real_root):
    pkl = osp.join(real_root, 'nuscenes', 'keyframe_scene-0061',
                   'n015-2018-07-24-11-22-45+0800.pkl')
    labels = osp.join(real_root, 'occ3d_nuscenes', 'gts', 'scene-1077',
                      '29796060110c4163b07f06eff4af0753', 'labels.npz')
    return pkl, labels


def test_real_calibrations_render_real_occ3d_frame_into_six_views(real_root, tmp_path):
    pkl, labels = _real_paths(real_root)
    cams = load_cameras(pkl, scale=0.125)
    assert len(cams) == 6 and cams['CAM_FRONT'].width == 200
    assert cams['CAM_FRONT'].height == 112  # round(900 / 8)
    sem = np.load(labels)['semantics']
    maps = CameraRenderer().render_all(sem, cams)
    pal = get_palette('occ3d_nuscenes')
    for name, m in maps.items():
        assert m.semantic.shape == (cams[name].height, cams[name].width)
        assert m.hit.float().mean() > 0.3, name
        assert (m.depth[m.hit] > 0).all() and (m.depth[m.hit] < 120).all()
        save_semantic_png(str(tmp_path / f'{name}.png'), m.semantic, pal)
        save_depth_png(str(tmp_path / f'{name}_depth.png'), m.depth)
    front = maps['CAM_FRONT'].semantic
    h = front.shape[0]
    road_low = (front[h // 2:] == 11).float().mean().item()
    road_high = (front[:h // 2] == 11).float().mean().item()
    assert road_low > 0.3 and road_high == 0.0
    # Depth grows towards the horizon on the road: lower rows are nearer.
    d = maps['CAM_FRONT'].depth
    col = front.shape[1] // 2
    assert d[h - 1, col] < d[h // 2 + 5, col]
    assert len(list(tmp_path.glob('*.png'))) == 12


def test_vad_style_info_cameras(real_root):
    pkl = osp.join(real_root, 'nuscenes', 'infos', 'nuscenes_mini_infos_val.pkl')
    cams = load_cameras(pkl, index=0, scale=0.25)
    assert set(cams) == {'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
                         'CAM_BACK_LEFT', 'CAM_BACK_RIGHT'}
    front = cams['CAM_FRONT']
    # The front camera looks along ego +x: its optical axis (third column) is ~(1, 0, 0).
    assert front.cam2ego[0, 2] > 0.99 and front.cam2ego[2, 3] > 1.0


def test_camera_renderer_builds_from_registry():
    from occworld4d.registry import TASK_UTILS
    r = TASK_UTILS.build(dict(type='CameraRenderer', free_label=0,
                              geometry=dict(pc_range=(-4, -4, -1, 4, 4, 2.2),
                                            voxel_size=(0.4, 0.4, 0.4))))
    grid = torch.zeros((20, 20, 8), dtype=torch.long)  # free = 0
    grid[15, :, :] = 3  # wall at x = 2.0
    cam = PinholeCamera('c', K, CAM2EGO, 160, 90).scaled(0.1)  # 16 x 9 pixels
    maps = r.render(grid, cam)
    assert (maps.semantic[maps.hit] == 3).all() and maps.hit.float().mean() > 0.5
    torch.testing.assert_close(maps.depth[maps.hit], torch.full_like(maps.depth[maps.hit], 2.0))


@pytest.mark.gpu
def test_camera_cuda_matches_cpu(real_root):
    pkl, labels = _real_paths(real_root)
    cam = load_cameras(pkl, scale=0.125)['CAM_FRONT']
    sem = torch.from_numpy(np.load(labels)['semantics'].astype(np.int64))
    r = CameraRenderer(dtype=torch.float64)
    cpu, gpu = r.render(sem, cam), r.render(sem.cuda(), cam)
    assert torch.equal(cpu.semantic, gpu.semantic.cpu())
    torch.testing.assert_close(cpu.depth, gpu.depth.cpu())


def test_camera_palette_follows_the_project_palette_with_black_background():
    from occworld4d.visualization.palettes import get_palette as project_palette
    for voc in ('occ3d_nuscenes', 'carlasc_raw', 'occ3d_waymo'):
        ours, theirs = get_palette(voc), project_palette(voc)
        free = {'occ3d_nuscenes': 17, 'carlasc_raw': 0, 'occ3d_waymo': 15}[voc]
        keep = np.arange(len(ours)) != free
        np.testing.assert_array_equal(ours[keep], theirs[keep])
        assert ours[free].tolist() == [0, 0, 0]
