"""Render semantic voxel grids to RGB images: a bird's-eye view and an isometric view.

Grid axes are (X, Y, Z) with Z = height. Both renderers use the driving convention of the
ego frame: +X forward (up in the image), +Y left (left in the image). Images are uint8
(H, W, 3) numpy arrays. Pure numpy, no OpenGL.
"""
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np

from .palettes import PaletteLike, get_palette

BACKGROUND = (255, 255, 255)


def _as_grid(semantics, name: str = 'semantics') -> np.ndarray:
    """A (X, Y, Z) integer numpy array from a numpy array or a torch tensor."""
    if hasattr(semantics, 'detach'):
        semantics = semantics.detach().cpu().numpy()
    grid = np.asarray(semantics)
    if grid.ndim != 3:
        raise ValueError(f'{name} must be a voxel grid (X, Y, Z); got shape {grid.shape}')
    if not np.issubdtype(grid.dtype, np.integer):
        raise TypeError(f'{name} must hold integer class ids; got dtype {grid.dtype}')
    return grid


def _lookup(palette: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """palette[labels] with a clear error for ids beyond the palette."""
    if labels.size and (labels.min() < 0 or labels.max() >= len(palette)):
        raise ValueError(f'class ids span [{labels.min()}, {labels.max()}] but the palette has '
                         f'{len(palette)} colours; pass the vocabulary of these voxels')
    return palette[labels]


def top_labels(semantics, free_label: int) -> Tuple[np.ndarray, np.ndarray]:
    """Label and height of the top-most non-free voxel of every column.

    Args:
        semantics: (X, Y, Z) class ids.
        free_label: id of free space.

    Returns:
        labels (X, Y) (``free_label`` for empty columns) and heights (X, Y) int
        (-1 for empty columns).
    """
    grid = _as_grid(semantics)
    occupied = grid != free_label  # (X, Y, Z)
    Z = grid.shape[2]
    # index of the last occupied voxel along Z = Z - 1 - first occupied in reversed order
    top = Z - 1 - np.argmax(occupied[:, :, ::-1], axis=2)  # (X, Y)
    has = occupied.any(axis=2)
    heights = np.where(has, top, -1)
    labels = np.take_along_axis(grid, np.clip(top, 0, Z - 1)[..., None], axis=2)[..., 0]
    labels = np.where(has, labels, free_label)
    return labels, heights


def render_bev(semantics, palette: PaletteLike = 'occ3d_nuscenes', free_label: int = 17,
               height_shading: bool = False, scale: int = 1,
               background: Tuple[int, int, int] = BACKGROUND,
               shade_min: float = 0.4) -> np.ndarray:
    """Bird's-eye view: each pixel shows the colour of the top-most non-free voxel.

    Pixel (row, col) shows column (x, y) = (X - 1 - row // scale, Y - 1 - col // scale),
    i.e. +X points up and +Y points left (ego frame seen from above).

    Args:
        semantics: (X, Y, Z) class ids (numpy or torch).
        palette: vocabulary name or (K, 3) colours.
        free_label: id of free space (not drawn).
        height_shading: darken lower surfaces: colour * (m + (1 - m) * (z + 1) / Z) with
            m = ``shade_min`` (0.4 by default).
        scale: pixels per voxel (nearest-neighbour).
        background: colour of empty columns.

    Returns:
        uint8 image (X * scale, Y * scale, 3).
    """
    pal = get_palette(palette)
    labels, heights = top_labels(semantics, free_label)  # (X, Y) each
    img = _lookup(pal, np.where(heights >= 0, labels, 0)).astype(np.float32)  # (X, Y, 3)
    if height_shading:
        Z = _as_grid(semantics).shape[2]
        img *= (shade_min + (1 - shade_min) * (heights + 1) / Z)[..., None]
    img[heights < 0] = background
    img = img[::-1, ::-1]  # rows: +X up; cols: +Y left
    if scale > 1:
        img = img.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.ascontiguousarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------- isometric
# Viewer at the (-X, +Y, +Z) corner looking down at 30 degrees, 2:1 pixel-art projection:
#   u = (-x - y) * s   (screen column; +Y goes left, -X goes left)
#   v = (-x + y) * s / 2 - z * s   (screen row)
# so +X (forward) recedes up-right and +Y (left) comes down-left. The visible faces of a
# cube are its top (+Z), its -X face and its +Y face. A voxel is nearer the viewer when
# d = -x + y + z is larger; cubes with equal d never overlap, so drawing in increasing d
# (painter's algorithm; here a per-pixel max-d buffer) is exact.
FACE_SHADE = {'top': 1.0, 'minus_x': 0.8, 'plus_y': 0.6}


@lru_cache(maxsize=16)
def _cube_sprite(s: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of one unit cube drawn at the origin: offsets (du, dv) and face shade.

    Pixel centres are sampled and assigned to the face whose parallelogram contains them.
    """
    du, dv = np.meshgrid(np.arange(-3 * s, 3 * s), np.arange(-3 * s, 3 * s), indexing='xy')
    pu, pv = du.ravel() + 0.5, dv.ravel() + 0.5
    a, b = pu / s, pv / s
    shade = np.zeros_like(a)
    # top face z=1, (x, y) in [0,1]^2: a = -x - y, b = (y - x) / 2 - 1
    x = (-a - 2 * (b + 1)) / 2
    y = (-a + 2 * (b + 1)) / 2
    inside = (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)
    shade[inside] = FACE_SHADE['top']
    # -X face x=0, (y, z) in [0,1]^2: a = -y, b = y / 2 - z
    y, z = -a, -a / 2 - b
    inside = (shade == 0) & (y >= 0) & (y <= 1) & (z >= 0) & (z <= 1)
    shade[inside] = FACE_SHADE['minus_x']
    # +Y face y=1, (x, z) in [0,1]^2: a = -x - 1, b = (1 - x) / 2 - z
    x = -a - 1
    z = (1 - x) / 2 - b
    inside = (shade == 0) & (x >= 0) & (x <= 1) & (z >= 0) & (z <= 1)
    shade[inside] = FACE_SHADE['plus_y']
    keep = shade > 0
    return du.ravel()[keep], dv.ravel()[keep], shade[keep]


def iso_pixel(x: float, y: float, z: float, voxel_px: int, shape_xyz: Tuple[int, int, int]
              ) -> Tuple[int, int]:
    """Image (row, col) of the grid point (x, y, z) in :func:`render_voxels_iso`'s output."""
    X, Y, Z = shape_xyz
    s = voxel_px
    u = (-x - y) * s - (-X - Y) * s + s  # same offsets as the renderer
    v = (-x + y) * s / 2 - z * s - (-X / 2 - Z) * s + s
    return int(np.floor(v)), int(np.floor(u))


def render_voxels_iso(semantics, palette: PaletteLike = 'occ3d_nuscenes', free_label: int = 17,
                      voxel_px: int = 4, background: Tuple[int, int, int] = BACKGROUND
                      ) -> np.ndarray:
    """Isometric view of the non-free voxels with flat face shading.

    Top faces show the class colour, the -X faces 0.8 and the +Y faces 0.6 of it. See the
    comment above for the projection; :func:`iso_pixel` maps a grid point to its pixel.

    Args:
        semantics: (X, Y, Z) class ids (numpy or torch).
        palette: vocabulary name or (K, 3) colours.
        free_label: id of free space (not drawn).
        voxel_px: pixels per voxel edge (s).
        background: colour of empty pixels.

    Returns:
        uint8 image (H, W, 3) with W = (X + Y + 2) * s, H = (X / 2 + Y / 2 + Z + 2) * s.
    """
    grid = _as_grid(semantics)
    pal = get_palette(palette)
    X, Y, Z = grid.shape
    s = int(voxel_px)
    H, W = int(np.ceil((X / 2 + Y / 2 + Z + 2) * s)), (X + Y + 2) * s
    img = np.empty((H, W, 3), dtype=np.uint8)
    img[:] = background
    xs, ys, zs = np.nonzero(grid != free_label)  # (N,) each
    if xs.size == 0:
        return img
    colours = _lookup(pal, grid[xs, ys, zs]).astype(np.float32)  # (N, 3)
    depth = -xs + ys + zs  # (N,) larger = nearer the viewer
    u0 = (-xs - ys) * s - (-X - Y) * s + s  # (N,) screen column of the cube origin
    v0 = np.floor((-xs + ys) * s / 2 - zs * s - (-X / 2 - Z) * s + s).astype(np.int64)
    du, dv, shade = _cube_sprite(s)  # (P,) each
    cols = (u0[:, None] + du[None]).ravel()  # (N * P,)
    rows = (v0[:, None] + dv[None]).ravel()
    ok = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    pix = (rows * W + cols)[ok]
    d = np.broadcast_to(depth[:, None], (xs.size, du.size)).ravel()[ok]
    vox = np.broadcast_to(np.arange(xs.size)[:, None], (xs.size, du.size)).ravel()[ok]
    face = np.broadcast_to(shade[None], (xs.size, du.size)).ravel()[ok]
    order = np.lexsort((d, pix))  # by pixel, then depth ascending
    pix, vox, face = pix[order], vox[order], face[order]
    last = np.r_[pix[1:] != pix[:-1], True]  # nearest voxel of every covered pixel
    rgb = colours[vox[last]] * face[last][:, None]
    img.reshape(-1, 3)[pix[last]] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return img


def render(semantics, mode: str = 'bev', **kwargs) -> np.ndarray:
    """``render_bev`` (mode 'bev') or ``render_voxels_iso`` (mode 'iso')."""
    if mode == 'bev':
        return render_bev(semantics, **kwargs)
    if mode == 'iso':
        kwargs.pop('height_shading', None)
        kwargs.pop('scale', None)
        return render_voxels_iso(semantics, **kwargs)
    raise ValueError(f'unknown render mode {mode!r}; expected "bev" or "iso"')


def render_sequence(semantics, mode: str = 'bev', max_frames: Optional[int] = None,
                    **kwargs) -> list:
    """Render every frame of (T, X, Y, Z) (or one (X, Y, Z) grid) -> list of images."""
    if hasattr(semantics, 'detach'):
        semantics = semantics.detach().cpu().numpy()
    arr = np.asarray(semantics)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f'expected semantics (T, X, Y, Z) or (X, Y, Z); got shape {arr.shape}')
    idx = range(arr.shape[0])
    if max_frames is not None and arr.shape[0] > max_frames:
        idx = np.linspace(0, arr.shape[0] - 1, max_frames).round().astype(int)
    return [render(arr[t], mode, **kwargs) for t in idx]
