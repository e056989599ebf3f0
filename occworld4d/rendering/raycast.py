"""The one ray-casting core: exact 3D DDA (Amanatides & Woo, 1987) over a semantic voxel grid.

Both sensors use it: :mod:`.lidar` casts the beam pattern of a spinning LiDAR,
:mod:`.camera` casts one ray per pixel. Rays are processed together as tensors (CPU or
CUDA); the only Python loop is over traversal steps, at most ``X + Y + Z`` of them, and the
set of live rays is compacted as rays hit or leave the grid. The grid is padded by one
layer of "outside" voxels so that a single gather per step tells free / occupied / left.

Geometry: voxel ``(i, j, k)`` covers ``[lo + i * v, lo + (i + 1) * v)`` on each axis, with
``lo = pc_range[:3]`` and ``v = voxel_size``; axes X, Y, Z in the ego frame (Z up). A ray
``o + t * d`` (``d`` a unit vector, so ``t`` is metres) hits the first voxel it crosses with a
length > 0 whose label is neither free nor ignored; the reported range is the ``t`` at which
it *enters* that voxel (the surface point), or ``t = 0`` if it starts inside one.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

# Occ3D grid (nuScenes and Waymo at 0.4 m): 200 x 200 x 16 over [-40, -40, -1, 40, 40, 5.4].
OCC3D_PC_RANGE = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
OCC3D_VOXEL_SIZE = (0.4, 0.4, 0.4)


@dataclass(frozen=True)
class GridGeometry:
    """Where a voxel grid lies in the ego frame.

    Attributes:
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) in metres.
        voxel_size: (vx, vy, vz) in metres.
    """
    pc_range: Tuple[float, ...] = OCC3D_PC_RANGE
    voxel_size: Tuple[float, ...] = OCC3D_VOXEL_SIZE

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(X, Y, Z) number of voxels implied by the range and the voxel size."""
        return tuple(int(round((self.pc_range[a + 3] - self.pc_range[a]) / self.voxel_size[a]))
                     for a in range(3))

    def check(self, semantics: torch.Tensor, name: str = 'semantics') -> None:
        """Fail early when a grid's (X, Y, Z) shape does not match this geometry."""
        if semantics.dim() != 3 or tuple(semantics.shape) != self.shape:
            raise ValueError(
                f'{name}: expected a semantic grid of shape (X, Y, Z) = {self.shape} for '
                f'pc_range={self.pc_range}, voxel_size={self.voxel_size}; found '
                f'{tuple(semantics.shape)}')

    def voxel_center(self, index: Sequence[int]) -> np.ndarray:
        """Centre (x, y, z) in metres of voxel ``index`` = (i, j, k)."""
        lo = np.asarray(self.pc_range[:3], dtype=np.float64)
        return lo + (np.asarray(index, dtype=np.float64) + 0.5) * np.asarray(self.voxel_size)


@dataclass
class RayHits:
    """Result of :func:`cast_rays` for R rays (all tensors of leading size R).

    Attributes:
        hit (bool, (R,)): the ray met an occupied voxel within ``max_range``.
        range (float, (R,)): metres along the unit ray to the entry of that voxel; ``inf``
            where ``hit`` is False.
        label (int64, (R,)): class of the hit voxel; ``free_label`` where ``hit`` is False.
        voxel (int64, (R, 3)): (i, j, k) of the hit voxel; -1 where ``hit`` is False.
    """
    hit: torch.Tensor
    range: torch.Tensor
    label: torch.Tensor
    voxel: torch.Tensor


def _as_tensor(x, device, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=device).to(dtype)


@dataclass
class _PaddedGrid:
    """The grid as the traversal reads it.

    ``codes`` is the grid padded by one layer of voxels: 0 transparent, 1 occupied,
    2 outside, so that one gather per step both finds hits and notices rays that left the
    grid. ``labels`` and ``strides`` address the unpadded grid, ``pstrides`` the padded one.
    """
    codes: torch.Tensor  # uint8 ((X + 2) * (Y + 2) * (Z + 2),)
    pstrides: torch.Tensor  # int64 (3,)
    labels: torch.Tensor  # int64 (X * Y * Z,)
    strides: torch.Tensor  # int64 (3,)

    @classmethod
    def build(cls, semantics: torch.Tensor, free_label: int,
              ignore_labels: Sequence[int]) -> '_PaddedGrid':
        device = semantics.device
        transparent = semantics == free_label
        for label in ignore_labels:
            transparent |= semantics == label
        dims = torch.tensor(semantics.shape, device=device)
        pdims = dims + 2
        codes = torch.full(tuple(int(n) for n in pdims), 2, dtype=torch.uint8, device=device)
        codes[1:-1, 1:-1, 1:-1] = (~transparent).to(torch.uint8)
        return cls(codes=codes.reshape(-1),
                   pstrides=torch.tensor([pdims[1] * pdims[2], pdims[2], 1], device=device),
                   labels=semantics.reshape(-1).long(),
                   strides=torch.tensor([dims[1] * dims[2], dims[2], 1], device=device))


@dataclass
class _LiveRays:
    """Traversal state of the A rays still marching (tensors of leading size A).

    The next boundary crossed on each axis is at ``t = a + idx * b``. Six separate tensors
    (rather than two packed (A, 7) ones) measured about 20 % faster on the CPU: dropping
    the finished rays is six small gathers, but every step then works on contiguous columns.
    """
    idx: torch.Tensor  # int64 (A, 3) current voxel, padded-grid coordinates
    step: torch.Tensor  # int64 (A, 3) direction sign per axis, in {-1, 0, 1}
    ray: torch.Tensor  # int64 (A,) index of the ray in the output
    a: torch.Tensor  # (A, 3) crossing offset (inf on axes not moving)
    b: torch.Tensor  # (A, 3) metres per voxel along the ray (0 on axes not moving)
    t: torch.Tensor  # (A,) where the ray entered its current voxel

    def keep(self, index: torch.Tensor) -> '_LiveRays':
        """The rays at positions ``index`` (K,) of this state."""
        return _LiveRays(*(x.index_select(0, index) for x in
                           (self.idx, self.step, self.ray, self.a, self.b, self.t)))


def _unit_rays(origins, directions, device, dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """Origins (R, 3) and unit directions (R, 3); fails on bad shapes or zero directions."""
    directions = torch.as_tensor(directions, device=device).to(dtype)
    if directions.dim() != 2 or directions.shape[-1] != 3:
        raise ValueError(f'directions: expected shape (R, 3), found {tuple(directions.shape)}')
    num_rays = directions.shape[0]
    origins = torch.as_tensor(origins, device=device).to(dtype).expand(num_rays, 3)
    norm = directions.norm(dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError('directions: found a zero-length ray direction')
    return origins, directions / norm  # (R, 3) unit directions


def _slab_interval(o: torch.Tensor, d: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """Slab test: the parameter interval [t_in, t_out] (R,) of each ray inside the grid box,
    and the inverse directions (R, 3) (inf on axes the ray does not move along)."""
    zero = d == 0
    inv = torch.where(zero, torch.full_like(d, float('inf')), 1.0 / torch.where(zero, 1.0, d))
    t0 = (lo - o) * inv  # (R, 3)
    t1 = (hi - o) * inv
    inside_slab = (o >= lo) & (o < hi)
    # Axis-parallel rays: the slab is (-inf, inf) when the origin is inside it, else empty.
    t_near = torch.where(zero, torch.where(inside_slab, -float('inf'), float('inf')),
                         torch.minimum(t0, t1))
    t_far = torch.where(zero, torch.where(inside_slab, float('inf'), -float('inf')),
                        torch.maximum(t0, t1))
    return t_near.amax(dim=-1).clamp(min=0.0), t_far.amin(dim=-1), inv


def _start(ray, o, dr, ir, t, lo, vox, dims, dtype) -> _LiveRays:
    """State of the rays ``ray`` (A,) at their entry ``t`` (A,) into the grid.

    The voxel of the entry point: on a boundary, the voxel the ray moves into (the lower one
    for a negative direction), so that no voxel is visited for a zero length; clamping
    handles rays entering through the far faces (x == x_max). The next boundary crossed on
    each axis from voxel idx is at t = a + idx * b, recomputed from the integer index every
    step (no accumulated drift); inf on axes not moving.
    """
    step = torch.sign(dr).long()  # (A, 3) in {-1, 0, 1}
    q = (o + dr * t.unsqueeze(-1) - lo) / vox  # (A, 3) position in voxel units
    idx = torch.where(step < 0, torch.ceil(q) - 1, torch.floor(q)).long()
    idx = torch.minimum(torch.maximum(idx, torch.zeros_like(idx)), dims - 1)
    flat_axis = step == 0
    a = torch.where(flat_axis, float('inf'), (lo + (step > 0).to(dtype) * vox - o) * ir)
    b = torch.where(flat_axis, 0.0, vox * ir)
    # from here on idx is in padded-grid coordinates (+1), so a shifts by -b
    return _LiveRays(idx=idx + 1, step=step, ray=ray, a=a - b, b=b, t=t)


def _advance(live: _LiveRays, dtype, tie_rel: float, tie_eps: float) -> None:
    """Move every ray to its next voxel, in place.

    Every axis whose boundary is crossed at the nearest crossing t_next steps, so a ray
    through an edge or a corner moves diagonally and never "hits" a voxel it only touches.
    Crossings closer than ``t_next * tie_rel + tie_eps`` count as simultaneous.
    """
    t_axis = live.a + live.idx.to(dtype) * live.b  # (A, 3) next boundary crossing per axis
    t_next = t_axis.amin(dim=-1)  # (A,)
    move = t_axis <= (t_next * tie_rel + tie_eps).unsqueeze(-1)
    live.idx += live.step * move.long()
    live.t = t_next


def cast_rays(semantics: torch.Tensor,
              origins: torch.Tensor,
              directions: torch.Tensor,
              geometry: GridGeometry = GridGeometry(),
              free_label: int = 17,
              ignore_labels: Sequence[int] = (),
              max_range: float = float('inf'),
              dtype: torch.dtype = torch.float32,
              min_range: float = 0.0) -> RayHits:
    """Find the first occupied voxel along each ray with an exact 3D DDA.

    Steps: unit rays (:func:`_unit_rays`), the padded grid of codes (:class:`_PaddedGrid`),
    each ray's interval inside the grid box (:func:`_slab_interval`), the state of the rays
    that enter it (:func:`_start`); then per traversal step one gather of the codes, the
    hits recorded, the finished rays dropped and the others moved on (:func:`_advance`).

    Args:
        semantics (int tensor, (X, Y, Z)): class ids; ``free_label`` and ``ignore_labels``
            are transparent. Its device is the device of the computation.
        origins (float, (R, 3) or (3,)): ray origins in the grid's (ego) frame, metres.
        directions (float, (R, 3)): ray directions (normalised here).
        geometry: grid placement; its shape must equal ``semantics.shape``.
        free_label: label of empty space.
        ignore_labels: further transparent labels (e.g. 255 unknown).
        max_range: hits farther than this (metres) are not hits.
        dtype: float type of the traversal (float64 for bit-exact tests, float32 default).
        min_range: voxels entered closer than this (metres) are transparent, e.g. the ego
            vehicle's own voxels around a sensor.

    Returns:
        RayHits: per-ray hit flag, range, label and voxel index.
    """
    geometry.check(semantics)
    device = semantics.device
    o, d = _unit_rays(origins, directions, device, dtype)  # (R, 3) each
    num_rays = d.shape[0]
    lo = _as_tensor(geometry.pc_range[:3], device, dtype)
    hi = _as_tensor(geometry.pc_range[3:], device, dtype)
    vox = _as_tensor(geometry.voxel_size, device, dtype)
    dims = torch.tensor(geometry.shape, device=device)
    grid = _PaddedGrid.build(semantics, free_label, ignore_labels)
    t_in, t_out, inv = _slab_interval(o, d, lo, hi)  # (R,), (R,), (R, 3)
    out = RayHits(hit=torch.zeros(num_rays, dtype=torch.bool, device=device),
                  range=torch.full((num_rays,), float('inf'), dtype=dtype, device=device),
                  label=torch.full((num_rays,), free_label, dtype=torch.long, device=device),
                  voxel=torch.full((num_rays, 3), -1, dtype=torch.long, device=device))
    ray = torch.nonzero((t_in < t_out) & (t_in <= max_range)).squeeze(-1)  # (A,) live rays
    live = _start(ray, o[ray], d[ray], inv[ray], t_in[ray], lo, vox, dims, dtype)
    # Crossings closer than this count as simultaneous (an edge / corner): an absolute
    # tolerance plus a few ulps of t, so that float32 ties far from the origin are found too.
    tie_eps = 1e-6 * float(min(geometry.voxel_size))
    tie_rel = 1.0 + 4 * torch.finfo(dtype).eps
    for _ in range(int(dims.sum()) + 4):
        if live.ray.shape[0] == 0:
            break
        t = live.t
        code = grid.codes[(live.idx * grid.pstrides).sum(-1)]  # (A,)
        hit = code == 1
        if max_range < float('inf'):
            hit &= t <= max_range
        if min_range > 0:
            hit &= t >= min_range
        if bool(hit.any()):
            rays, v = live.ray[hit], live.idx[hit] - 1  # (H,), (H, 3) unpadded voxel
            out.hit[rays] = True
            out.range[rays] = t[hit]
            out.voxel[rays] = v
            out.label[rays] = grid.labels[(v * grid.strides).sum(-1)]
        # Rays still marching: in the grid, not hit, not past max range.
        marching = code == 0
        if min_range > 0:
            marching |= (code == 1) & (t < min_range)
        if max_range < float('inf'):
            marching &= t <= max_range
        live = live.keep(torch.nonzero(marching).squeeze(-1))
        _advance(live, dtype, tie_rel, tie_eps)
    return out


def to_grid_tensor(semantics: Union[np.ndarray, torch.Tensor],
                   device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """A semantic grid as an int64 tensor on ``device`` (numpy or tensor input)."""
    if isinstance(semantics, np.ndarray):
        semantics = torch.from_numpy(np.ascontiguousarray(semantics))
    return semantics.to(device=device if device is not None else semantics.device,
                        dtype=torch.long)


def first_hit_reference(semantics: np.ndarray, origin: np.ndarray, direction: np.ndarray,
                        geometry: GridGeometry, free_label: int, step: float = 1e-3,
                        max_range: float = 200.0) -> Optional[Tuple[float, Tuple[int, int, int]]]:
    """Brute-force reference for tests: march in tiny steps, return (t, voxel) of the first hit.

    Slow (pure numpy over sample points) and only accurate to ``step``; used to check the
    DDA on random grids.
    """
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    ts = np.arange(0.0, max_range, step)
    pts = np.asarray(origin, dtype=np.float64) + ts[:, None] * d
    lo = np.asarray(geometry.pc_range[:3])
    idx = np.floor((pts - lo) / np.asarray(geometry.voxel_size)).astype(np.int64)
    ok = ((idx >= 0) & (idx < np.asarray(geometry.shape))).all(-1)
    idx, ts = idx[ok], ts[ok]
    occ = semantics[idx[:, 0], idx[:, 1], idx[:, 2]] != free_label
    if not occ.any():
        return None
    first = int(np.argmax(occ))
    return float(ts[first]), tuple(int(v) for v in idx[first])
