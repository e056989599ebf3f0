"""Renderers put the right class colours at known voxels; writers round-trip."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from occworld4d.visualization import (OccVisualizer, get_palette, iso_pixel, render_bev,
                                      render_voxels_iso, save_gif, save_png, side_by_side)

FREE = 17


def _grid(shape=(6, 5, 4)):
    return np.full(shape, FREE, dtype=np.uint8)


def test_palette_nuscenes_standard_colours():
    pal = get_palette('occ3d_nuscenes')
    assert pal.shape == (18, 3)
    assert tuple(pal[4]) == (0, 150, 245)      # car
    assert tuple(pal[11]) == (255, 0, 255)     # driveable surface
    assert tuple(pal[16]) == (0, 175, 0)       # vegetation
    # merged vocabularies reuse the colours by name
    dc = get_palette('dynamiccity_carlasc')
    assert tuple(dc[10]) == (0, 150, 245)      # vehicle = car
    assert tuple(dc[6]) == (255, 0, 255)       # road = driveable surface


def test_bev_top_most_voxel_exact_pixels():
    g = _grid()
    g[0, 0, 0] = 11          # road at the origin column
    g[2, 3, 0] = 11
    g[2, 3, 2] = 4           # car above the road: top-most wins
    g[5, 4, 1] = 16
    img = render_bev(g, 'occ3d_nuscenes', FREE)
    pal = get_palette('occ3d_nuscenes')
    X, Y = 6, 5
    assert img.shape == (X, Y, 3)
    # pixel (row, col) shows column (X-1-row, Y-1-col)
    assert tuple(img[X - 1 - 0, Y - 1 - 0]) == tuple(pal[11])
    assert tuple(img[X - 1 - 2, Y - 1 - 3]) == tuple(pal[4])
    assert tuple(img[X - 1 - 5, Y - 1 - 4]) == tuple(pal[16])
    assert tuple(img[X - 1 - 1, Y - 1 - 1]) == (255, 255, 255)  # empty column
    assert (img == 255).all(axis=2).sum() == X * Y - 3


def test_bev_scale_and_height_shading_and_torch_input():
    g = _grid((2, 2, 4))
    g[0, 0, 3] = 4
    g[1, 1, 0] = 4
    img = render_bev(torch.from_numpy(g), height_shading=True, scale=3)
    assert img.shape == (6, 6, 3)
    car = get_palette('occ3d_nuscenes')[4].astype(float)
    # column (0,0) at the top z=3 of Z=4: factor 0.4 + 0.6 * 4/4 = 1
    assert tuple(img[3, 3]) == tuple(np.rint(car).astype(np.uint8))
    # column (1,1) at z=0: factor 0.4 + 0.6 * 1/4 = 0.55
    assert tuple(img[0, 0]) == tuple(np.rint(car * 0.55).astype(np.uint8))
    assert (img[0:3, 0:3] == img[0, 0]).all()


def test_bev_rejects_bad_input():
    with pytest.raises(ValueError, match='X, Y, Z'):
        render_bev(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='palette has'):
        render_bev(np.full((2, 2, 2), 30, np.uint8), 'occ3d_nuscenes', FREE)


def test_iso_probe_pixels_and_occlusion():
    s = 4
    g = _grid((6, 6, 4))
    g[2, 2, 0] = 4                                  # a car voxel
    img = render_voxels_iso(g, 'occ3d_nuscenes', FREE, voxel_px=s)
    pal = get_palette('occ3d_nuscenes')
    # centre of the car voxel's top face shows the full class colour
    r, c = iso_pixel(2.5, 2.5, 1.0, s, g.shape)
    assert tuple(img[r, c]) == tuple(pal[4])
    # centre of its -X face is shaded 0.8, of its +Y face 0.6
    r, c = iso_pixel(2.0, 2.5, 0.5, s, g.shape)
    assert tuple(img[r, c]) == tuple(np.rint(pal[4] * 0.8).astype(np.uint8))
    r, c = iso_pixel(2.5, 3.0, 0.5, s, g.shape)
    assert tuple(img[r, c]) == tuple(np.rint(pal[4] * 0.6).astype(np.uint8))
    # a far corner pixel is background
    assert tuple(img[0, 0]) == (255, 255, 255)
    # a vegetation voxel in front (towards -X, +Y, +Z) hides the car's top face centre
    g[1, 3, 1] = 16
    img2 = render_voxels_iso(g, 'occ3d_nuscenes', FREE, voxel_px=s)
    r, c = iso_pixel(2.5, 2.5, 1.0, s, g.shape)
    assert tuple(img2[r, c]) != tuple(pal[4])
    assert tuple(img2[r, c]) in {tuple(np.rint(pal[16] * f).astype(np.uint8))
                                 for f in (1.0, 0.8, 0.6)}


def test_png_gif_roundtrip_and_side_by_side(tmp_path):
    a = np.zeros((4, 5, 3), np.uint8)
    b = np.full((6, 3, 3), 200, np.uint8)
    sbs = side_by_side([a, b], gap=2)
    assert sbs.shape == (6, 10, 3)
    assert (sbs[:4, :5] == 0).all() and (sbs[:, 7:] == 200).all() and (sbs[4:, :5] == 255).all()
    titled = side_by_side([a, b], ['gt', 'pred'])
    assert titled.shape[0] == 6 + 14
    p = save_png(sbs, str(tmp_path / 'x.png'))
    assert (np.asarray(Image.open(p).convert('RGB')) == sbs).all()
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)]
    gif = save_gif(frames, str(tmp_path / 'x.gif'))
    im = Image.open(gif)
    assert im.n_frames == 3
    im.seek(2)
    assert np.asarray(im.convert('RGB'))[0, 0, 0] == 255
    assert sorted(os.listdir(tmp_path)) == ['x.gif', 'x.png']  # no temp files left


def test_visualizer_writes_to_local_backend(tmp_path):
    g = np.full((3, 4, 4, 2), 0, np.uint8)
    g[:, :, :, 0] = 6  # road everywhere
    g2 = g.copy()
    for t in range(3):
        g2[t, t, 0, 1] = 10  # a vehicle that moves, so GIF frames differ
    sample = dict(gt_semantics=torch.from_numpy(g), pred_semantics=torch.from_numpy(g2),
                  vocabulary='dynamiccity_carlasc')
    vis = OccVisualizer(name='h4_vis_test', vis_backends=[dict(type='LocalVisBackend')],
                        save_dir=str(tmp_path), max_frames=2, height_shading=False)
    layout = {}
    img = vis.add_datasample('val', data_sample=sample, step=3)
    from occworld4d.visualization.visualizer import draw_occ_sample
    assert (draw_occ_sample(sample, max_frames=2, height_shading=False, layout=layout)
            == img).all()
    pal = get_palette('dynamiccity_carlasc')
    # rows GT / pred / difference x 2 frames, panels upscaled to 512 px (4 x 4 grid: 128 px
    # per voxel); GT frame 0 panel: voxel (x, y) = (3, 3) is road at pixel (0.5, 0.5) * 128
    assert len(layout['panel_origins']) == 6 and layout['scale'] == 128
    x0, y0 = layout['panel_origins'][0]
    assert tuple(img[y0 + 64, x0 + 64]) == tuple(pal[6])
    # columns are frames 0 and 2 (max_frames=2 of 3); pred frame 2 has the vehicle at
    # (x, y) = (2, 0): row (4 - 2 - 0.5) * 128, col (4 - 0 - 0.5) * 128
    x0, y0 = layout['panel_origins'][3]
    assert tuple(img[y0 + 192, x0 + 448]) == tuple(pal[10])
    # ... and the difference panel marks that column 'extra' (GT has no vehicle there)
    from occworld4d.visualization.figure import DIFF_PALETTE
    x0, y0 = layout['panel_origins'][5]
    assert tuple(img[y0 + 192, x0 + 448]) == tuple(DIFF_PALETTE[2])
    # the legend holds every class colour (free excluded) in its swatches
    lx, ly = layout['legend_origin']
    for (a, b, c, d), rgb in zip(layout['legend_boxes'], pal[1:]):
        assert tuple(img[ly + (b + d) // 2, lx + (a + c) // 2]) == tuple(rgb)
    written = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert any(f.endswith('val_3.png') for f in written), written
    out = tmp_path / 'anim.gif'
    vis.add_datasample('val', data_sample=sample, out_file=str(out))
    assert Image.open(out).n_frames == 3


def test_mp4_optional(tmp_path):
    from occworld4d.visualization import mp4_available, save_frames, save_mp4
    frames = [np.full((7, 9, 3), v, np.uint8) for v in (0, 255)]
    if not mp4_available():
        with pytest.raises(ImportError, match='imageio-ffmpeg'):
            save_mp4(frames, str(tmp_path / 'x.mp4'))
        pytest.skip('imageio-ffmpeg not installed: MP4 writing not exercised')
    out = save_frames(frames, str(tmp_path / 'x.mp4'))
    assert os.path.getsize(out) > 0


def test_save_frames_rejects_unknown_extension(tmp_path):
    from occworld4d.visualization import save_frames
    with pytest.raises(ValueError, match='.png, .gif or .mp4'):
        save_frames([np.zeros((2, 2, 3), np.uint8)], str(tmp_path / 'x.avi'))


def test_save_mp4_and_gif_without_frames_name_the_file(tmp_path):
    from occworld4d.visualization import save_gif, save_mp4
    for fn in (save_mp4, save_gif):
        with pytest.raises(ValueError, match=r"\('.*empty\.\w+'\) got no frames"):
            fn([], str(tmp_path / f'empty.{fn.__name__[5:]}'))
    with pytest.raises(ValueError, match='one size'):
        save_mp4([np.zeros((2, 2, 3), np.uint8), np.zeros((4, 2, 3), np.uint8)],
                 str(tmp_path / 'mixed.mp4'))
    assert not list(tmp_path.iterdir())  # nothing written
