"""Latent adapter of token-grid latents (OccSora's 4D VQ tokens, UniScene's KL-VAE latent).

The latent of one clip is a grid (C, t, h, w) over the voxel window (T, X, Y, Z): latent cell
(i, j, k) sits over the stride block ``[i*st, (i+1)*st) x [j*sx, (j+1)*sx) x [k*sy, (k+1)*sy)``
of frames x X x Y (all of Z), st = T / t, sx = X / h, sy = Y / w. The adapter holds no
parameters and does not change the latent (``to_latent`` / ``from_latent`` are identities with
a shape check); it gives the generation applications (:mod:`occworld4d.apis.generation`) the
voxel <-> latent-cell correspondence they need for latent inpainting:

* :meth:`region_mask` (voxel box -> the cells to regenerate) and
* :meth:`frame_mask` (frames -> the cells touching them),

both grown by ``halo`` cells per axis (t, h, w): a cell next to the box was encoded from
voxels that include the box's old content (the encoder's receptive field), so keeping it
would drag the regenerated part back to the old content. UniScene's encoder is 2D per frame
(halo 0 in time is exact there); OccSora's 3D convolutions mix neighbouring frames (halo 1).

Shapes come from the config or from the model: ``latent_shape`` defaults to the generator's
``latent_shape`` and ``voxel_shape`` to ``latent_shape[1:] * stride`` with Z = the tokenizer's
height (:meth:`bind`, called by LatentDiffusion), so one base config serves datasets of
different window sizes.
"""
from typing import Iterable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from occworld4d.registry import MODELS


def _triple(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int, int]:
    vals = (value, ) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(vals) != 3 or any(v < 0 for v in vals):
        raise ValueError(f'GridLatentAdapter: {name} must be an int >= 0 or three of them '
                         f'(t, h, w); got {value}')
    return vals


@MODELS.register_module()
class GridLatentAdapter:
    """Identity latent adapter of a (C, t, h, w) latent grid over a (T, X, Y, Z) window.

    Args:
        latent_shape: (C, t, h, w); default: the generator's ``latent_shape`` (see :meth:`bind`).
        voxel_shape: (T, X, Y, Z); default: (t*st, h*sx, w*sy, Z) from ``stride`` and ``height``.
        stride: (st, sx, sy) voxels per latent cell along frames, X, Y (used when
            ``voxel_shape`` is not given; checked against it when both are).
        height: Z voxels (used when ``voxel_shape`` is not given; default: the tokenizer's).
        halo: latent cells added around a region along (t, h, w): an int or three ints.
    """

    def __init__(self, latent_shape: Optional[Sequence[int]] = None,
                 voxel_shape: Optional[Sequence[int]] = None,
                 stride: Optional[Sequence[int]] = None, height: Optional[int] = None,
                 halo: Union[int, Sequence[int]] = 1):
        self.halo = _triple(halo, 'halo')
        self.stride = _triple(stride, 'stride') if stride is not None else None
        if self.stride is not None and min(self.stride) < 1:
            raise ValueError(f'GridLatentAdapter: stride must be >= 1; got {stride}')
        self.height = int(height) if height is not None else None
        self._voxel_cfg = tuple(int(v) for v in voxel_shape) if voxel_shape is not None else None
        if self._voxel_cfg is not None and len(self._voxel_cfg) != 4:
            raise ValueError(f'GridLatentAdapter: voxel_shape must be (T, X, Y, Z); got '
                             f'{voxel_shape}')
        self.latent_shape = None
        self.voxel_shape = None
        if latent_shape is not None:
            self._set_latent_shape(latent_shape)

    # ------------------------------------------------------------- shapes
    def _set_latent_shape(self, latent_shape: Sequence[int]) -> None:
        shape = tuple(int(v) for v in latent_shape)
        if len(shape) != 4:
            raise ValueError(f'GridLatentAdapter: latent_shape must be (C, t, h, w); got '
                             f'{latent_shape}')
        self.latent_shape = shape
        self._resolve_voxels()

    def _resolve_voxels(self) -> None:
        t, h, w = self.latent_shape[1:]
        if self._voxel_cfg is not None:
            T, X, Y, Z = self._voxel_cfg
            if T % t or X % h or Y % w:
                raise ValueError(f'GridLatentAdapter: voxel_shape {self._voxel_cfg} is not a '
                                 f'whole multiple of the latent grid (t, h, w) = {(t, h, w)}')
            stride = (T // t, X // h, Y // w)
            if self.stride is not None and stride != self.stride:
                raise ValueError(f'GridLatentAdapter: stride {self.stride} disagrees with '
                                 f'voxel_shape {self._voxel_cfg} / latent grid {(t, h, w)} = '
                                 f'{stride}')
            self.stride, self.voxel_shape = stride, self._voxel_cfg
        elif self.stride is not None and self.height is not None:
            st, sx, sy = self.stride
            self.voxel_shape = (t * st, h * sx, w * sy, self.height)

    def bind(self, latent_shape: Optional[Sequence[int]] = None, tokenizer=None) -> None:
        """Complete the shapes from the generator (LatentDiffusion calls this once).

        ``latent_shape``: the generator's; must equal the adapter's own when both are given.
        ``tokenizer``: its height (``height`` or ``semantic.height``) is Z when neither
        ``voxel_shape`` nor ``height`` was configured.
        """
        if latent_shape is not None:
            shape = tuple(int(v) for v in latent_shape)
            if self.latent_shape is None:
                self._set_latent_shape(shape)
            elif shape != self.latent_shape:
                raise ValueError(f'latent_shape {shape} of the generator disagrees with the '
                                 f'latent adapter\'s latent_shape {self.latent_shape}')
        if self.voxel_shape is None and self.height is None and tokenizer is not None:
            height = getattr(tokenizer, 'height', None)
            if height is None:
                height = getattr(getattr(tokenizer, 'semantic', None), 'height', None)
            if height is not None:
                self.height = int(height)
                if self.latent_shape is not None:
                    self._resolve_voxels()
        if self.latent_shape is None:
            raise ValueError('GridLatentAdapter: latent_shape (C, t, h, w) is unknown; give it '
                             'to the adapter or the generator')
        if self.voxel_shape is None:
            raise ValueError('GridLatentAdapter: voxel_shape is unknown; give voxel_shape '
                             '(T, X, Y, Z), or stride (st, sx, sy) and height')

    def _ready(self, what: str) -> None:
        if self.latent_shape is None or self.voxel_shape is None:
            raise ValueError(f'GridLatentAdapter.{what}: shapes not set (latent_shape='
                             f'{self.latent_shape}, voxel_shape={self.voxel_shape}); build it '
                             'with them or bind() it to a generator')

    @property
    def default_overlap(self) -> int:
        """Smallest overlap of chained windows that keeps a latent time slice known:
        (1 + halo_t) * st frames (OccSora 16 of 32, UniScene 1), below the window length."""
        self._ready('default_overlap')
        T, st = self.voxel_shape[0], self.stride[0]
        return max(0, min((1 + self.halo[0]) * st, T - 1))

    # ------------------------------------------------------------ transforms
    def to_latent(self, latent: Tensor) -> Tensor:
        """Tokenizer latent (B, C, t, h, w) -> the same tensor (shape checked)."""
        self._ready('to_latent')
        if not torch.is_tensor(latent) or tuple(latent.shape[1:]) != self.latent_shape:
            found = tuple(latent.shape) if torch.is_tensor(latent) else type(latent).__name__
            raise ValueError(f'GridLatentAdapter.to_latent: expected a latent (B, '
                             f'{", ".join(map(str, self.latent_shape))}); found {found}')
        return latent

    def from_latent(self, latent: Tensor) -> Tensor:
        """Diffusion latent (B, C, t, h, w) -> the same tensor (shape checked)."""
        self._ready('from_latent')
        if latent.ndim != 5 or tuple(latent.shape[1:]) != self.latent_shape:
            raise ValueError(f'GridLatentAdapter.from_latent: expected (B, '
                             f'{", ".join(map(str, self.latent_shape))}); found '
                             f'{tuple(latent.shape)}')
        return latent

    # ----------------------------------------------------------------- masks
    def _cells_hit(self, axis: int, lo: int, hi: int, halo: int,
                   device: Optional[torch.device]) -> Tensor:
        """Bool (n,) of the cells along grid axis ``axis`` (0 t, 1 h, 2 w) whose stride block
        meets the voxel range [lo, hi), grown by ``halo`` cells on each side."""
        n, s = self.latent_shape[1 + axis], self.stride[axis]
        first, last = lo // s, (hi - 1) // s  # the cells the range touches
        idx = torch.arange(n, device=device)
        return (idx >= first - halo) & (idx <= last + halo)

    def region_mask(self, region: Sequence[int], device: Optional[torch.device] = None) -> Tensor:
        """Latent cells to regenerate for a voxel box.

        Args:
            region: (x0, x1, y0, y1, z0, z1[, t0, t1]) half-open voxel box; the time range
                defaults to the whole window. Every cell covers all of Z, so the z range only
                has to be valid.

        Returns:
            bool (t, h, w): True where the cell's footprint (grown by ``halo``) meets the box.
        """
        self._ready('region_mask')
        if len(region) not in (6, 8):
            raise ValueError(f'region must be (x0, x1, y0, y1, z0, z1[, t0, t1]), got {region}')
        T, X, Y, Z = self.voxel_shape
        t0, t1 = (int(region[6]), int(region[7])) if len(region) == 8 else (0, T)
        bounds = dict(t=(t0, t1), x=tuple(region[0:2]), y=tuple(region[2:4]),
                      z=tuple(region[4:6]))
        for axis, size in dict(t=T, x=X, y=Y, z=Z).items():
            lo, hi = bounds[axis]
            if not 0 <= lo < hi <= size:
                raise ValueError(f'region {axis} range [{lo}, {hi}) is empty or outside '
                                 f'[0, {size})')
        ht, hh, hw = self.halo
        mt = self._cells_hit(0, t0, t1, ht, device)
        mh = self._cells_hit(1, *bounds['x'], hh, device)
        mw = self._cells_hit(2, *bounds['y'], hw, device)
        return mt[:, None, None] & mh[None, :, None] & mw[None, None, :]  # (t, h, w)

    def frame_mask(self, frames: Iterable[int], device: Optional[torch.device] = None,
                   halo: Optional[int] = None) -> Tensor:
        """Bool (t, h, w): True on the cells whose frames (grown by the time halo, or by
        ``halo`` when given) include any of ``frames``."""
        self._ready('frame_mask')
        T = self.voxel_shape[0]
        frames = sorted({int(f) for f in frames})
        bad = [f for f in frames if not 0 <= f < T]
        if bad:
            raise ValueError(f'frame_mask: frames {bad} outside [0, {T})')
        t, h, w = self.latent_shape[1:]
        ht = self.halo[0] if halo is None else int(halo)
        mt = torch.zeros(t, dtype=torch.bool, device=device)
        for f in frames:
            mt |= self._cells_hit(0, f, f + 1, ht, device)
        return mt[:, None, None].expand(t, h, w).clone()
