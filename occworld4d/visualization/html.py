"""An interactive 3D view of a voxel scene: one self-contained HTML file (plotly).

The page needs no network: plotly.js is embedded (``include_plotlyjs=True``). A person
orbits / zooms the scene with the mouse, scrubs time with the slider (or presses play),
and toggles classes by clicking their legend entries (double click isolates one).

Each class is one ``Mesh3d`` trace of the exposed voxel faces (faces between an occupied
voxel and free space or the grid's side; never the bottom), coordinates in metres of the
ego frame, flat shaded. Every frame is a plotly frame with one mesh per class, so a
class hidden in the legend stays hidden while scrubbing. The ego is a flat arrow at the
ego origin pointing along +X.
"""
import os
from typing import Dict

import numpy as np

from occworld4d.utils import atomic_path

from .figure import EGO_COLOUR, SceneInfo, frame_label
from .palettes import get_palette

# (axis, step, the 4 corner offsets of that face of a unit cube, counter-clockwise seen
# from outside)
_FACES = (
    (0, +1, ((1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1))),
    (0, -1, ((0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0))),
    (1, +1, ((0, 1, 0), (0, 1, 1), (1, 1, 1), (1, 1, 0))),
    (1, -1, ((0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1))),
    (2, +1, ((0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1))),
)


def _neighbour_free(occupied: np.ndarray):
    """Per face direction: (axis, voxels whose neighbour there is free / outside, corners)."""
    pad = np.pad(occupied, 1, constant_values=False)
    X, Y, Z = occupied.shape
    for axis, step, corners in _FACES:
        sl = [slice(1, X + 1), slice(1, Y + 1), slice(1, Z + 1)]
        sl[axis] = slice(1 + step, [X, Y, Z][axis] + 1 + step)
        yield axis, occupied & ~pad[tuple(sl)], corners


def _runs(labels: np.ndarray, axis: int):
    """Runs of one label (>= 0) along ``axis``: start voxels (N, 3), lengths (N,)."""
    m = np.moveaxis(labels, axis, -1).astype(np.int32)
    pad = np.pad(m, [(0, 0), (0, 0), (1, 1)], constant_values=-1)
    change = pad[..., 1:] != pad[..., :-1]  # (.., n + 1): a run starts / ends here
    starts = np.argwhere(change[..., :-1] & (m >= 0))
    ends = np.argwhere(change[..., 1:] & (m >= 0))  # last voxel of each run
    others = [a for a in range(3) if a != axis]
    coords = np.empty_like(starts)
    coords[:, others] = starts[:, :2]
    coords[:, axis] = starts[:, 2]
    return coords, ends[:, 2] - starts[:, 2] + 1


def face_quads(grid: np.ndarray, free_label: int):
    """Exposed faces of a labelled grid, merged into strips of one class.

    A face is exposed when the neighbour voxel is free or outside the grid; bottom faces
    (-Z) are left out (nobody looks from below), as are faces between two occupied voxels.
    Neighbouring exposed faces of one direction and class are merged into rectangles: runs
    along one in-plane axis, then equal runs of consecutive rows (a flat road becomes a few
    rectangles instead of one quad per voxel).

    Returns:
        integer corners (N, 4, 3) and the class of each face (N,).
    """
    quads, classes = [], []
    occupied = grid != free_label
    for axis, mask, corners in _neighbour_free(occupied):
        along = 0 if axis != 0 else 1  # merge axis in the face plane
        start, length = _runs(np.where(mask, grid.astype(np.int32), -1), along)
        if not len(start):
            continue
        cls = grid[start[:, 0], start[:, 1], start[:, 2]]
        # equal runs (class, plane, start, length) in consecutive rows -> one rectangle
        other = 3 - axis - along
        o = start[:, other]
        order = np.lexsort((o, length, start[:, along], start[:, axis], cls))
        start, length, cls, o = start[order], length[order], cls[order], o[order]
        same = np.ones(len(o), bool)
        same[0] = False
        for col in (cls, start[:, axis], start[:, along], length):
            same[1:] &= col[1:] == col[:-1]
        same[1:] &= o[1:] == o[:-1] + 1
        first = np.flatnonzero(~same)
        width = np.diff(np.r_[first, len(o)])  # rows merged per rectangle
        start, length, cls = start[first], length[first], cls[first]
        c = np.asarray(corners)  # (4, 3)
        q = start[:, None, :] + c[None]  # (N, 4, 3)
        q[:, :, along] += (c[None, :, along] == 1) * (length[:, None] - 1)
        q[:, :, other] += (c[None, :, other] == 1) * (width[:, None] - 1)
        quads.append(q)
        classes.append(cls)
    if not quads:
        return np.zeros((0, 4, 3), np.int64), np.zeros((0,), grid.dtype)
    return np.concatenate(quads), np.concatenate(classes)


def class_meshes(grid: np.ndarray, info: SceneInfo) -> dict:
    """{label: (vertices (V, 3) float32 metres, triangles (F, 3) uint16 / int32)} of the
    surface of every class present (:func:`face_quads`; shared corners stored once)."""
    quads, classes = face_quads(grid, info.free_label)
    out = {}
    for label in np.unique(classes):
        q = quads[classes == label].reshape(-1, 3)
        key = (q[:, 0] * (grid.shape[1] + 1) + q[:, 1]) * (grid.shape[2] + 1) + q[:, 2]
        uniq, inv = np.unique(key, return_inverse=True)
        corner = np.empty((len(uniq), 3), np.int64)
        corner[inv] = q
        verts = np.asarray(info.pc_range[:3]) + corner * np.asarray(info.voxel_size)
        quad_idx = inv.reshape(-1, 4)
        tris = np.concatenate([quad_idx[:, [0, 1, 2]], quad_idx[:, [0, 2, 3]]])
        out[int(label)] = (verts.astype(np.float32),
                           tris.astype(np.uint16 if len(uniq) < 65536 else np.int32))
    return out


def _rgb(c) -> str:
    return f'rgb({int(c[0])},{int(c[1])},{int(c[2])})'


def _surface_count(grid: np.ndarray, free: int) -> int:
    """Occupied voxels with at least one free (or outside) neighbour."""
    occ = grid != free
    return int(np.count_nonzero(occ & ~_interior(occ)))


def keep_frames(counts, max_voxels: int) -> list:
    """All frames, or as many evenly spread ones (first and last kept) as fit the budget."""
    T = len(counts)
    if sum(counts) <= max_voxels or T == 1:
        return list(range(T))
    n = max(1, min(T, int(max_voxels // max(1, max(counts)))))
    return sorted({int(i) for i in np.linspace(0, T - 1, n).round()})


def _interior(occ: np.ndarray) -> np.ndarray:
    """Voxels whose 6 neighbours are all occupied (never seen)."""
    pad = np.pad(occ, 1, constant_values=False)
    inner = occ.copy()
    X, Y, Z = occ.shape
    for axis in range(3):
        for step in (-1, 1):
            sl = [slice(1, X + 1), slice(1, Y + 1), slice(1, Z + 1)]
            sl[axis] = slice(1 + step, [X, Y, Z][axis] + 1 + step)
            inner &= pad[tuple(sl)]
    return inner


def scene_figure(semantics: np.ndarray, info: SceneInfo, max_voxels: int = 400_000,
                 title: str = ''):
    """The plotly Figure (frames + slider + legend) and stats of a (T, X, Y, Z) scene."""
    import plotly.graph_objects as go  # local: plotly is needed (and loaded) by the HTML view only

    sem = np.asarray(semantics)
    if sem.ndim == 3:
        sem = sem[None]
    if sem.ndim != 4:
        raise ValueError(f'semantics must be (T, X, Y, Z) or (X, Y, Z); got {sem.shape}')
    voc = info.vocab
    pal = get_palette(voc)
    T = sem.shape[0]
    counts = [_surface_count(sem[t], voc.free_label) for t in range(T)]
    keep = keep_frames(counts, max_voxels)
    labels = [k for k in range(voc.num_classes) if k != voc.free_label]

    empty = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint16))

    def traces(t):
        out = []
        meshes = class_meshes(sem[t], info)
        for k in labels:
            v, f = meshes.get(k, empty)
            out.append(go.Mesh3d(
                x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2],
                name=voc.classes[k], legendgroup=voc.classes[k], showlegend=True,
                color=_rgb(pal[k]), flatshading=True, hoverinfo='name',
                lighting=dict(ambient=0.55, diffuse=0.8, specular=0.05, roughness=1.0),
                lightposition=dict(x=-1e5, y=5e4, z=1e5)))
        return out

    def title_of(t):
        return f'{title}   {frame_label(info, t, T)}'.strip()

    ego = _ego_trace(info, sem.shape[1:])
    fig = go.Figure(data=traces(keep[0]) + [ego])
    fig.frames = [go.Frame(data=traces(t), name=str(t), traces=list(range(len(labels))),
                           layout=dict(title=dict(text=title_of(t))))
                  for t in keep] if len(keep) > 1 else []
    lo, hi = info.pc_range[:3], info.pc_range[3:]
    axes = dict(showbackground=False, gridcolor='rgb(220,220,220)', zeroline=False)
    fig.update_layout(
        title=dict(text=title_of(keep[0]), x=0.02),
        paper_bgcolor='white', margin=dict(l=0, r=0, t=40, b=0),
        legend=dict(title=dict(text=f'{voc.name} (click: show / hide)'),
                    itemsizing='constant'),
        scene=dict(aspectmode='data',
                   xaxis=dict(title='x (m, forward)', range=[lo[0], hi[0]], **axes),
                   yaxis=dict(title='y (m, left)', range=[lo[1], hi[1]], **axes),
                   zaxis=dict(title='z (m)', range=[lo[2], hi[2]], **axes),
                   camera=dict(eye=dict(x=-1.5, y=-0.9, z=1.1), up=dict(x=0, y=0, z=1))))
    if len(keep) > 1:
        step = [dict(method='animate', label=(f'{info.first_frame + t}' if not info.frame_rate
                                              else f'{(info.first_frame + t) / info.frame_rate:.1f}s'),
                     args=[[str(t)], dict(mode='immediate', frame=dict(duration=0, redraw=True),
                                          transition=dict(duration=0))]) for t in keep]
        fps = info.frame_rate or 2.0
        fig.update_layout(
            sliders=[dict(active=0, steps=step, x=0.05, len=0.9, y=0.02,
                          currentvalue=dict(prefix='time ' if info.frame_rate else 'frame ',
                                            visible=True))],
            updatemenus=[dict(type='buttons', direction='left', x=0.05, y=0.12,
                              showactive=False, buttons=[
                                  dict(label='play', method='animate', args=[None, dict(
                                      frame=dict(duration=int(1000 / fps), redraw=True),
                                      fromcurrent=True, transition=dict(duration=0))]),
                                  dict(label='pause', method='animate', args=[[None], dict(
                                      mode='immediate', frame=dict(duration=0, redraw=False))])])])
    stats = dict(frames=len(keep), frames_total=T, voxels=int(sum(counts[t] for t in keep)))
    return fig, stats


def _ego_trace(info: SceneInfo, grid_shape):
    """A flat arrow (two triangles) at the ego origin pointing along +X."""
    import plotly.graph_objects as go  # see scene_figure
    vx, vy, vz = info.voxel_size
    z = float(np.clip(0.0, info.pc_range[2], info.pc_range[5] - vz)) + vz * 0.05
    L = max(2.5 * vx, 0.04 * (info.pc_range[3] - info.pc_range[0]))
    x = [L, -0.5 * L, -0.2 * L, -0.5 * L]
    y = [0.0, 0.45 * L, 0.0, -0.45 * L]
    return go.Mesh3d(x=x, y=y, z=[z] * 4, i=[0, 0], j=[1, 2], k=[2, 3], name='ego (+X)',
                     color=_rgb(EGO_COLOUR), showlegend=True, hoverinfo='name',
                     flatshading=True)


def write_scene_html(semantics, info: SceneInfo, path: str, max_voxels: int = 400_000,
                     title: str = '') -> Dict[str, int]:
    """Write the interactive view of (T, X, Y, Z) ``semantics`` to ``path`` (atomically).

    Returns dict(frames (kept), frames_total, voxels (surface voxels drawn), bytes).
    """
    try:
        import plotly  # noqa: F401  (a missing package is one clear message)
    except ImportError as err:
        raise ImportError('the HTML view needs plotly (requirements/runtime.txt: '
                          '`pip install plotly`)') from err
    fig, stats = scene_figure(semantics, info, max_voxels, title)
    html = fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False,
                       config=dict(displaylogo=False, responsive=True),
                       default_height='100vh', default_width='100%')
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(html)
    stats['bytes'] = os.path.getsize(path)
    return stats
