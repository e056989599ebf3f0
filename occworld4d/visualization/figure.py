"""Pictures a person reads: BEV / isometric panels with a legend, a scale bar, the ego
marker, the frame index and time, and GT | sample | difference comparisons.

Every picture of the toolkit (``tools/visualize.py``, the sample writers, the training
visualization hook) is built here from the raw renderers in :mod:`.render`:

* a header line: frame index (``frame 3 of 0..15``) and time (``t = 1.50 s``, when the frame
  rate is known), plus an optional title;
* one or more panels (BEV upscaled nearest-neighbour so that its longer side is at least
  ``min_size`` pixels, or the isometric view at a voxel size that reaches ``min_size``),
  each with the ego marker (a triangle at the ego origin pointing along its heading, +X)
  and a scale bar in metres;
* a legend column: the class names and colours of the vocabulary, the ego marker, and in
  comparisons the colours of the difference panel.

Grid geometry (``pc_range``, ``voxel_size``) comes from the data when recorded, else from
the dataset the vocabulary belongs to (:data:`DATASET_GRIDS`), rescaled to the grid shape.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from occworld4d.structures import VOCABULARIES, Vocabulary, get_vocabulary

from .io import save_gif, save_png
from .palettes import get_palette
from .render import iso_pixel, render_bev, render_voxels_iso

# Ego marker fill colour (not in any palette) and outline.
EGO_COLOUR = (255, 0, 128)
EGO_OUTLINE = (0, 0, 0)
TRAJ_COLOUR = (255, 0, 128)
# Difference panel: one code per voxel, larger = drawn on top in BEV.
DIFF_CLASSES = ('agree (free)', 'agree', 'extra (sample only)', 'missed (GT only)',
                'wrong class')
DIFF_PALETTE = np.array([(255, 255, 255), (190, 190, 190), (230, 30, 40), (30, 90, 255),
                         (255, 150, 0)], dtype=np.uint8)

# Sensor grid of the dataset of each vocabulary (metres, ego frame; spec/datasets.md):
# Occ3D-nuScenes / -Waymo [-40, -40, -1, 40, 40, 5.4]; CarlaSC [-25.6, -25.6, -2, 25.6, 25.6, 1].
_OCC3D = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
_CARLASC = (-25.6, -25.6, -2.0, 25.6, 25.6, 1.0)
DATASET_GRIDS: Dict[str, Tuple[float, ...]] = {
    'occ3d_nuscenes': _OCC3D, 'dynamiccity_nuscenes': _OCC3D, 'occ3d_waymo': _OCC3D,
    'dynamiccity_waymo': _OCC3D, 'carlasc_raw': _CARLASC, 'dynamiccity_carlasc': _CARLASC}

MARGIN = 8
LEGEND_ROW = 18
# BEV height shading of the pictures: the ground keeps 70 % of its legend colour, so the
# legend stays readable (the raw renderer's default darkens to 40 %).
SHADE_MIN = 0.7


@dataclass
class SceneInfo:
    """What a picture needs besides the voxels.

    Attributes:
        vocabulary: vocabulary name, or a :class:`~occworld4d.structures.Vocabulary` of
            recorded class names (colours by class name; see :func:`vocabulary_of`).
        pc_range: (x0, y0, z0, x1, y1, z1) metres of the grid in the ego frame.
        voxel_size: (vx, vy, vz) metres.
        frame_rate: frames per second, or None (then no time is shown).
        geometry_recorded: False when pc_range / voxel_size were assumed from the dataset.
        trajectory: optional (T, 3) ego (dx, dy, yaw) relative to frame 0; the future path
            is drawn from each frame's ego position.
        first_frame: index of the first frame (frame numbers in the header start there).
    """
    vocabulary: object
    pc_range: Tuple[float, ...]
    voxel_size: Tuple[float, float, float]
    frame_rate: Optional[float] = None
    geometry_recorded: bool = True
    trajectory: Optional[np.ndarray] = None
    first_frame: int = 0
    notes: List[str] = field(default_factory=list)

    @property
    def vocab(self) -> Vocabulary:
        return vocabulary_of(self.vocabulary)

    @property
    def vocabulary_name(self) -> str:
        return self.vocab.name

    @property
    def free_label(self) -> int:
        return self.vocab.free_label

    def ego_cell(self) -> Tuple[float, float, float]:
        """Continuous grid coordinates (x, y, z) of the ego origin."""
        lo, v = self.pc_range[:3], self.voxel_size
        return tuple((0.0 - lo[a]) / v[a] for a in range(3))


def vocabulary_of(vocabulary) -> Vocabulary:
    """The :class:`Vocabulary` of a name (``VOCABULARIES``) or the object itself."""
    return vocabulary if isinstance(vocabulary, Vocabulary) else get_vocabulary(vocabulary)


def unnamed_vocabulary(num_classes: int, free_label: int,
                       class_names: Optional[Sequence[str]] = None,
                       name: Optional[str] = None) -> Vocabulary:
    """A vocabulary for labels without a known name: the recorded ``class_names`` (colours
    by name) or ``class 0 .. class K-1``; ``free_label`` is never drawn."""
    names = tuple(str(n) for n in class_names) if class_names is not None else tuple(
        'free' if k == free_label else f'class {k}' for k in range(num_classes))
    if not 0 <= free_label < len(names):
        raise ValueError(f'free_label {free_label} outside the {len(names)} classes {names}')
    return Vocabulary(name or ('unnamed vocabulary' if class_names is None else
                               'recorded classes'), names, int(free_label))


def scene_info(vocabulary: str, grid_shape: Sequence[int], pc_range=None, voxel_size=None,
               frame_rate=None, trajectory=None, first_frame: int = 0) -> SceneInfo:
    """A :class:`SceneInfo` from whatever was recorded; missing geometry is the dataset's.

    ``grid_shape`` is (X, Y, Z). With only ``pc_range`` the voxel size is range / shape;
    with only ``voxel_size`` the grid is centred on the ego in X and Y; with neither the
    dataset grid of the vocabulary (:data:`DATASET_GRIDS`) is stretched over the shape
    (so a 32 x 32 resize of Occ3D has 2.5 m voxels).
    """
    name = vocabulary_of(vocabulary).name
    X, Y, Z = (int(s) for s in grid_shape[-3:])
    recorded = pc_range is not None or voxel_size is not None
    notes = []
    if pc_range is None and voxel_size is not None:
        vs = [float(v) for v in np.asarray(voxel_size).ravel()[:3]]
        zlo = DATASET_GRIDS.get(name, (0, 0, 0))[2]
        pc_range = (-X * vs[0] / 2, -Y * vs[1] / 2, zlo, X * vs[0] / 2, Y * vs[1] / 2,
                    zlo + Z * vs[2])
    if pc_range is None:
        pc_range = DATASET_GRIDS.get(name)
        if pc_range is None:  # unknown dataset: 1 m voxels centred on the ego
            pc_range = (-X / 2, -Y / 2, 0.0, X / 2, Y / 2, float(Z))
            notes.append(f'grid geometry not recorded: assumed 1 m voxels {list(pc_range)}')
        else:
            notes.append('grid geometry not recorded: assumed the '
                         f'{name} dataset range {list(pc_range)}')
    pc_range = tuple(float(v) for v in np.asarray(pc_range).ravel()[:6])
    if len(pc_range) != 6:
        raise ValueError(f'pc_range must have 6 values (x0, y0, z0, x1, y1, z1); got {pc_range}')
    if voxel_size is None:
        voxel_size = tuple((pc_range[a + 3] - pc_range[a]) / n for a, n in enumerate((X, Y, Z)))
    voxel_size = tuple(float(v) for v in np.asarray(voxel_size).ravel()[:3])
    if len(voxel_size) != 3 or min(voxel_size) <= 0:
        raise ValueError(f'voxel_size must be 3 positive values; got {voxel_size}')
    fr = None if frame_rate is None else float(np.asarray(frame_rate).ravel()[0])
    if fr is not None and not fr > 0:
        raise ValueError(f'frame_rate must be > 0 Hz; got {fr}')
    traj = None if trajectory is None else np.asarray(trajectory, dtype=np.float64)
    if traj is not None and (traj.ndim != 2 or traj.shape[1] < 2):
        raise ValueError(f'trajectory must be (T, 3) (dx, dy, yaw); got shape {traj.shape}')
    return SceneInfo(vocabulary, pc_range, voxel_size, fr, recorded, traj, int(first_frame),
                     notes)


# ------------------------------------------------------------------------------ drawing
def font(size: int = 14):
    """A scalable font when FreeType is there (Pillow >= 10.1), else PIL's bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _draw(canvas):
    """An ImageDraw without anti-aliasing: flat colours keep GIF palettes exact."""
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = '1'
    return draw


def _text_size(draw, text, fnt) -> Tuple[int, int]:
    box = draw.textbbox((0, 0), text, font=fnt)
    return box[2] - box[0], box[3] - box[1]


def nice_length(max_metres: float) -> float:
    """Largest 1 / 2 / 5 x 10^k metres not above ``max_metres`` (a scale bar's length)."""
    if max_metres <= 0:
        return 0.0
    k = math.floor(math.log10(max_metres))
    for m in (5, 2, 1):
        if m * 10 ** k <= max_metres:
            return float(m * 10 ** k)
    return float(10 ** k)


def _fmt_m(m: float) -> str:
    return f'{m:g} m'


def auto_scale(grid_shape: Sequence[int], mode: str, min_size: int) -> int:
    """BEV pixels per voxel / iso pixels per voxel edge so the panel reaches ``min_size``."""
    X, Y, Z = grid_shape[-3:]
    if mode == 'bev':  # the shorter side reaches min_size, unless the longer gets > 4x that
        s = math.ceil(min_size / min(X, Y))
        return max(1, s if s * max(X, Y) <= 4 * min_size else math.ceil(min_size / max(X, Y)))
    return max(1, math.ceil(min_size / (X + Y + 2)))


def _triangle(cx: float, cy: float, dx: float, dy: float, size: float):
    """Triangle with its centroid at (cx, cy) pointing along the unit screen vector."""
    px, py = -dy, dx
    tip = (cx + dx * size, cy + dy * size)
    back = (cx - dx * size * 0.6, cy - dy * size * 0.6)
    return [tip, (back[0] + px * size * 0.6, back[1] + py * size * 0.6),
            (back[0] - px * size * 0.6, back[1] - py * size * 0.6)]


def _future_path(info: SceneInfo, t: int) -> Optional[np.ndarray]:
    """Ego positions of frames t+1.. in the ego frame of frame t (metres), or None."""
    traj = info.trajectory
    if traj is None or t >= len(traj) - 1:
        return None
    yaw = traj[t, 2] if traj.shape[1] > 2 else 0.0
    d = traj[t + 1:, :2] - traj[t, :2]
    c, s = math.cos(-yaw), math.sin(-yaw)
    return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], axis=1)


class Panel:
    """One rendered view plus where grid points land on it (for the overlays)."""

    def __init__(self, image: np.ndarray, mode: str, grid_shape, scale: int, pad: int = 0):
        self.image, self.mode, self.shape, self.scale, self.pad = image, mode, grid_shape, scale, pad

    def pixel(self, x: float, y: float, z: float = 0.0) -> Tuple[float, float]:
        """(col, row) of the continuous grid point (x, y, z) on this panel."""
        X, Y, Z = self.shape
        if self.mode == 'bev':
            return (Y - y) * self.scale, (X - x) * self.scale
        r, c = iso_pixel(x, y, z, self.scale, self.shape)
        return c + self.pad, r + self.pad

    def ego_point(self, info: 'SceneInfo') -> Tuple[float, float, float]:
        """Grid point of the ego marker: the ego origin, its height clipped into the grid."""
        ex, ey, ez = info.ego_cell()
        return ex, ey, float(np.clip(ez, 0, self.shape[2]))

    def ego_pixel(self, info: 'SceneInfo') -> Tuple[int, int]:
        """(col, row) pixel at the centre of the ego marker."""
        c, r = self.pixel(*self.ego_point(info))
        return int(np.floor(c)), int(np.floor(r))


def render_panel(grid: np.ndarray, info: SceneInfo, mode: str = 'bev', scale: int = None,
                 min_size: int = 512, palette=None, free_label: Optional[int] = None,
                 height_shading: bool = True, t: int = 0, draw_ego: bool = True) -> Panel:
    """Render one (X, Y, Z) grid and draw the ego marker, future path and scale bar on it."""
    grid = np.asarray(grid)
    palette = info.vocabulary if palette is None else palette
    free = info.free_label if free_label is None else free_label
    s = scale or auto_scale(grid.shape, mode, min_size)
    if mode == 'bev':
        img = render_bev(grid, palette, free, height_shading=height_shading, scale=s,
                         shade_min=SHADE_MIN)
        pad = 0
    elif mode == 'iso':
        raw = render_voxels_iso(grid, palette, free, voxel_px=s)
        pad = 4 * MARGIN
        img = np.pad(raw, ((pad, pad), (pad, pad), (0, 0)), constant_values=255)
    else:
        raise ValueError(f'unknown render mode {mode!r}; expected "bev" or "iso"')
    panel = Panel(img, mode, grid.shape, s, pad)
    canvas = Image.fromarray(np.ascontiguousarray(img[..., :3]))
    draw = _draw(canvas)
    ex, ey, ez = panel.ego_point(info)
    X, Y, Z = grid.shape
    size = max(11.0, 1.2 * s) if mode == 'bev' else max(11.0, 1.5 * s)
    path = _future_path(info, t)
    if path is not None and draw_ego:
        pts = [panel.pixel(ex, ey, ez)] + [
            panel.pixel(ex + p[0] / info.voxel_size[0], ey + p[1] / info.voxel_size[1], ez)
            for p in path]
        draw.line(pts, fill=TRAJ_COLOUR, width=max(2, s // 3))
        for q in pts[1:]:
            r = max(2, s // 3)
            draw.ellipse([q[0] - r, q[1] - r, q[0] + r, q[1] + r], fill=TRAJ_COLOUR)
    if draw_ego and 0 <= ex <= X and 0 <= ey <= Y:
        c0 = panel.pixel(ex, ey, ez)
        c1 = panel.pixel(ex + 1, ey, ez)
        d = np.array([c1[0] - c0[0], c1[1] - c0[1]], float)
        d /= np.linalg.norm(d)
        tri = _triangle(c0[0], c0[1], d[0], d[1], size)
        draw.polygon(tri, fill=EGO_COLOUR)
        draw.line(tri + tri[:1], fill=EGO_OUTLINE, width=2)
    _scale_bar(draw, panel, info)
    panel.image = np.asarray(canvas).copy()
    return panel


def _scale_bar(draw, panel: Panel, info: SceneInfo) -> None:
    """A black bar of a round number of metres with its label, bottom left of the panel."""
    X, Y, Z = panel.shape
    fnt = font(13)
    if panel.mode == 'bev':
        px_per_m = panel.scale / info.voxel_size[1]
        length = nice_length(0.25 * Y * info.voxel_size[1])
        n = length * px_per_m
        h = panel.image.shape[0]
        x0, y0 = MARGIN, h - MARGIN - 6
        draw.rectangle([x0 - 4, y0 - 18, x0 + n + 4 + 40, y0 + 10], fill=(255, 255, 255))
        draw.rectangle([x0, y0, x0 + n, y0 + 5], fill=(0, 0, 0))
        draw.text((x0, y0 - 17), _fmt_m(length), fill=(0, 0, 0), font=fnt)
        return
    # iso: a bar along +X on the ground, in front of the grid's near (+Y) edge
    length = nice_length(0.25 * X * info.voxel_size[0])
    cells = length / info.voxel_size[0]
    a = panel.pixel(0, Y + 2, 0)
    b = panel.pixel(cells, Y + 2, 0)
    draw.line([a, b], fill=(0, 0, 0), width=4)
    d = np.array([b[0] - a[0], b[1] - a[1]], float)
    d /= max(np.linalg.norm(d), 1e-9)
    draw.polygon(_triangle(b[0], b[1], d[0], d[1], 7), fill=(0, 0, 0))
    draw.text((a[0] - 10, a[1] + 4), _fmt_m(length) + ' (along +X)', fill=(0, 0, 0), font=fnt)


def legend_image(entries: Sequence[Tuple[str, Tuple[int, int, int]]], title: str = '',
                 width: int = 190) -> Tuple[np.ndarray, List[Tuple[int, int, int, int]]]:
    """A legend column: one swatch + name per entry. Returns the image and swatch boxes."""
    fnt, tfnt = font(13), font(14)
    lines = title.split('\n') if title else []
    top = MARGIN + (LEGEND_ROW * len(lines) + 4 if lines else 0)
    h = top + LEGEND_ROW * len(entries) + MARGIN
    canvas = Image.new('RGB', (width, h), (255, 255, 255))
    draw = _draw(canvas)
    for i, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + i * LEGEND_ROW), line, fill=(0, 0, 0), font=tfnt)
    boxes = []
    for i, (name, rgb) in enumerate(entries):
        y = top + i * LEGEND_ROW
        box = (MARGIN, y + 2, MARGIN + 14, y + 16)
        draw.rectangle(box, fill=tuple(int(c) for c in rgb), outline=(0, 0, 0))
        draw.text((MARGIN + 20, y + 2), name, fill=(0, 0, 0), font=fnt)
        boxes.append(box)
    return np.asarray(canvas).copy(), boxes


def class_entries(vocabulary) -> List[Tuple[str, Tuple[int, int, int]]]:
    """(name, colour) of every class of the vocabulary (name or object) except free."""
    voc = vocabulary_of(vocabulary)
    pal = get_palette(voc)
    return [(n, tuple(int(c) for c in pal[i])) for i, n in enumerate(voc.classes)
            if i != voc.free_label]


def difference_grid(gt: np.ndarray, pred: np.ndarray, free_label: int) -> np.ndarray:
    """Per-voxel agreement codes (indices into :data:`DIFF_CLASSES`), uint8 (X, Y, Z)."""
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f'GT {gt.shape} and sample {pred.shape} grids differ in shape')
    g, p = gt != free_label, pred != free_label
    out = np.zeros(gt.shape, np.uint8)
    out[g & p & (gt == pred)] = 1
    out[~g & p] = 2
    out[g & ~p] = 3
    out[g & p & (gt != pred)] = 4
    return out


def difference_stats(gt: np.ndarray, pred: np.ndarray, free_label: int) -> Dict[str, float]:
    """Occupancy IoU and the share of voxels occupied in both with the right class."""
    g, p = np.asarray(gt) != free_label, np.asarray(pred) != free_label
    union = int((g | p).sum())
    both = g & p
    return dict(iou=float((g & p).sum() / union) if union else 1.0,
                class_acc=float((np.asarray(gt)[both] == np.asarray(pred)[both]).mean())
                if both.any() else float('nan'))


def render_difference(gt, pred, info: SceneInfo, mode: str, scale: int, t: int = 0) -> Panel:
    """The difference panel; BEV shows the most severe code of each column."""
    code = difference_grid(gt, pred, info.free_label)
    if mode == 'bev':
        top = code.max(axis=2)  # (X, Y)
        flat = np.where(top > 0, top, 0)[..., None].astype(np.uint8)  # one z layer
        return render_panel(flat, info, 'bev', scale, palette=DIFF_PALETTE, free_label=0,
                            height_shading=False, t=t)
    return render_panel(code, info, 'iso', scale, palette=DIFF_PALETTE, free_label=0, t=t)


def frame_label(info: SceneInfo, t: int, num_frames: int) -> str:
    """'frame 3 of 0..15   t = 1.50 s' (time only when the frame rate is known)."""
    idx = info.first_frame + t
    text = f'frame {idx} of {info.first_frame}..{info.first_frame + num_frames - 1}' \
        if num_frames > 1 else f'frame {idx}'
    if info.frame_rate:
        text += f'   t = {idx / info.frame_rate:.2f} s'
    return text


def compose_grid(rows: Sequence[Sequence[Tuple[str, Panel]]], legend: np.ndarray,
                 header: str, layout: Optional[dict] = None) -> np.ndarray:
    """Header line, rows of titled panels, the legend on the right (uint8 image)."""
    hfnt, tfnt = font(16), font(14)
    head_h, title_h = 26, 20
    row_h = [title_h + max(p.image.shape[0] for _, p in r) + MARGIN for r in rows]
    row_w = [sum(p.image.shape[1] + MARGIN for _, p in r) for r in rows]
    W = MARGIN + max(row_w) + legend.shape[1] + MARGIN
    H = head_h + max(sum(row_h), title_h + legend.shape[0] + MARGIN)
    canvas = Image.new('RGB', (W, H), (255, 255, 255))
    draw = _draw(canvas)
    draw.text((MARGIN, 4), header, fill=(0, 0, 0), font=hfnt)
    origins, y0 = [], head_h
    for r, h in zip(rows, row_h):
        x = MARGIN
        for title, p in r:
            draw.text((x, y0), title, fill=(0, 0, 0), font=tfnt)
            y = y0 + title_h
            canvas.paste(Image.fromarray(p.image), (x, y))
            draw.rectangle([x - 1, y - 1, x + p.image.shape[1], y + p.image.shape[0]],
                           outline=(120, 120, 120))
            origins.append((x, y))
            x += p.image.shape[1] + MARGIN
        y0 += h
    lx = MARGIN + max(row_w)
    canvas.paste(Image.fromarray(legend), (lx, head_h + title_h))
    if layout is not None:
        layout.update(panel_origins=origins, legend_origin=(lx, head_h + title_h),
                      size=(W, H))
    return np.asarray(canvas).copy()


def compose(panels: Sequence[Tuple[str, Panel]], legend: np.ndarray, header: str,
            layout: Optional[dict] = None) -> np.ndarray:
    """Header line, titled panels left to right, the legend on the right (uint8 image)."""
    return compose_grid([panels], legend, header, layout)


def legend_for(info: SceneInfo, compare: bool = False):
    entries = class_entries(info.vocabulary) + [('ego (heading +X)', EGO_COLOUR)]
    if compare:
        entries += [(f'diff: {n}', tuple(int(c) for c in DIFF_PALETTE[i]))
                    for i, n in enumerate(DIFF_CLASSES) if i > 0]
    vs = info.voxel_size
    title = f'{info.vocabulary_name}\nvoxel {vs[0]:.3g} x {vs[1]:.3g} x {vs[2]:.3g} m'
    longest = max([len(e[0]) + 3 for e in entries] + [len(t) for t in title.split('\n')])
    return legend_image(entries, title, width=max(190, 8 * longest + 16))


def draw_frame(grid, info: SceneInfo, t: int = 0, num_frames: int = 1, mode: str = 'bev',
               scale: Optional[int] = None, min_size: int = 512, height_shading: bool = True,
               title: str = '', layout: Optional[dict] = None) -> np.ndarray:
    """One annotated picture of one (X, Y, Z) grid (frame ``t`` of ``num_frames``)."""
    if hasattr(grid, 'detach'):
        grid = grid.detach().cpu().numpy()
    grid = np.asarray(grid)
    panel = render_panel(grid, info, mode, scale, min_size, height_shading=height_shading, t=t)
    legend, boxes = legend_for(info, False)
    header = frame_label(info, t, num_frames) + (f'   {title}' if title else '')
    img = compose([('BEV  (+X forward = up, darker = lower)' if mode == 'bev' else
                    'isometric', panel)], legend, header, layout)
    if layout is not None:
        layout['legend_boxes'] = boxes
        layout['panels'] = [panel]
    return img


def draw_comparison(gt, pred, info: SceneInfo, t: int = 0, num_frames: int = 1,
                    mode: str = 'bev', scale: Optional[int] = None, min_size: int = 512,
                    height_shading: bool = True, title: str = '',
                    layout: Optional[dict] = None) -> np.ndarray:
    """GT | sample | difference of one frame, with the shared legend and frame header."""
    gt, pred = (np.asarray(a.detach().cpu().numpy() if hasattr(a, 'detach') else a)
                for a in (gt, pred))
    s = scale or auto_scale(gt.shape, mode, min_size)
    panels = [('GT', render_panel(gt, info, mode, s, height_shading=height_shading, t=t)),
              ('sample', render_panel(pred, info, mode, s, height_shading=height_shading,
                                      t=t)),
              ('difference', render_difference(gt, pred, info, mode, s, t))]
    st = difference_stats(gt, pred, info.free_label)
    acc = 'n/a' if math.isnan(st['class_acc']) else f'{st["class_acc"]:.2f}'
    header = (frame_label(info, t, num_frames) + f'   occupancy IoU {st["iou"]:.2f}, '
              f'class agreement {acc}' + (f'   {title}' if title else ''))
    legend, boxes = legend_for(info, True)
    img = compose(panels, legend, header, layout)
    if layout is not None:
        layout['legend_boxes'] = boxes
        layout['panels'] = [p for _, p in panels]
    return img


def scene_frames(semantics, info: SceneInfo, mode: str = 'bev', gt=None, **kw) -> list:
    """One annotated picture per frame of (T, X, Y, Z); with ``gt`` (T, X, Y, Z) each
    picture is GT | sample | difference."""
    sem = semantics.detach().cpu().numpy() if hasattr(semantics, 'detach') else \
        np.asarray(semantics)
    if sem.ndim == 3:
        sem = sem[None]
    T = sem.shape[0]
    if gt is None:
        return [draw_frame(sem[t], info, t, T, mode, **kw) for t in range(T)]
    gt = gt.detach().cpu().numpy() if hasattr(gt, 'detach') else np.asarray(gt)
    if gt.ndim == 3:
        gt = gt[None]
    if gt.shape != sem.shape:
        raise ValueError(f'GT {gt.shape} and sample {sem.shape} must have one shape')
    return [draw_comparison(gt[t], sem[t], info, t, T, mode, **kw) for t in range(T)]


# ------------------------------------------------------------------- recorded metadata
# What the npz writers record for the pictures (tools/sample.py, SaveOccSamplesHook,
# export_scene.py) and what :func:`info_from_meta` reads back.
META_KEYS = ('vocabulary', 'class_names', 'free_label', 'voxel_size', 'pc_range', 'frame_rate',
             'trajectory')


def picture_meta(vocabulary=None, pc_range=None, voxel_size=None, frame_rate=None,
                 grid_shape: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
    """The npz arrays that let a later tool draw a scene without its config:
    ``vocabulary`` (name = palette name), ``class_names``, ``free_label``, ``pc_range``,
    ``voxel_size`` (range / ``grid_shape`` when only the range is known) and ``frame_rate``
    (Hz). Unknown values are left out (old files without them stay readable)."""
    out: Dict[str, np.ndarray] = {}
    if vocabulary is not None:
        voc = vocabulary_of(vocabulary)
        if VOCABULARIES.get(voc.name) == voc:  # a named vocabulary (its palette's name)
            out['vocabulary'] = np.array(voc.name)
        out['class_names'] = np.array(voc.classes)
        out['free_label'] = np.int64(voc.free_label)
    if pc_range is not None:
        pc = np.asarray(pc_range, np.float32).ravel()
        if pc.size != 6:
            raise ValueError(f'pc_range must have 6 values (x0, y0, z0, x1, y1, z1); got {pc}')
        out['pc_range'] = pc
        if voxel_size is None and grid_shape is not None:
            X, Y, Z = (int(v) for v in grid_shape[-3:])
            voxel_size = [(pc[a + 3] - pc[a]) / n for a, n in enumerate((X, Y, Z))]
    if voxel_size is not None:
        out['voxel_size'] = np.asarray(voxel_size, np.float32).ravel()[:3]
    if frame_rate is not None:
        out['frame_rate'] = np.float32(frame_rate)
    return out


def info_from_meta(meta: dict, grid_shape: Sequence[int], vocabulary=None,
                   voxel_size=None, first_frame: int = 0) -> SceneInfo:
    """:class:`SceneInfo` from recorded metadata (npz keys of :data:`META_KEYS`).

    ``vocabulary`` (a name) wins over the recorded one; a recorded name that is not a known
    vocabulary, or only ``class_names``, gives a vocabulary of those names (colours by
    name); ``voxel_size`` wins over the recorded one. Raises ValueError on bad values.
    """
    def get(k):
        v = meta.get(k)
        return None if v is None else np.asarray(v)

    voc = vocabulary
    if voc is None and get('vocabulary') is not None:
        name = str(get('vocabulary'))
        try:
            voc = get_vocabulary(name)
        except KeyError:
            voc = None
            if get('class_names') is None:
                raise ValueError(f'records vocabulary {name!r}, which is not one of the known '
                                 'vocabularies, and no class_names')
    if voc is None and get('class_names') is not None:
        names = [str(n) for n in get('class_names').ravel()]
        free = int(get('free_label')) if get('free_label') is not None else len(names) - 1
        voc = unnamed_vocabulary(len(names), free, names,
                                 None if get('vocabulary') is None else str(get('vocabulary')))
    if voc is None:
        raise ValueError('records no vocabulary / class_names')
    traj = get('trajectory')
    return scene_info(voc, grid_shape, get('pc_range'),
                      voxel_size if voxel_size is not None else get('voxel_size'),
                      get('frame_rate'), traj, first_frame)


def save_scene_pictures(semantics, info: SceneInfo, prefix: str, mode: str = 'bev',
                        gt=None, fps: Optional[float] = None, **kw) -> List[str]:
    """The pictures every sample writer makes, drawn like ``tools/visualize.py``:
    ``<prefix>_<mode>.png`` (frame 0) and ``<prefix>.gif`` (every frame; ``fps`` default
    the frame rate, else 4). Each has the legend, scale bar, ego
    marker, frame index and time; with ``gt`` each picture is GT | sample | difference.
    Returns the written paths."""
    frames = scene_frames(semantics, info, mode, gt=gt, **kw)
    return [save_png(frames[0], f'{prefix}_{mode}.png'),
            save_gif(frames, f'{prefix}.gif', fps or info.frame_rate or 4.0)]
