"""DynamicCity's Padded Rollout: the six HexPlane planes <-> one square 2D canvas.

With plane sizes T', X', Y', Z' (X' = Y') the canvas is S x S, S = X' + T' + Z'::

    rows 0 .. X'-1            [ xy (X'xY') | xz (X'xZ')  | tx^T (X'xT') ]
    rows X' .. X'+T'-1        [ ty (T'xY') | tz (T'xZ')  | 0            ]
    rows X'+T' .. S-1         [ yz^T (Z'xY') | 0         | 0            ]

The mapping is a pure permutation of the plane cells plus zero padding, so
``unroll(rollout(planes)) == planes`` exactly. :meth:`valid_mask` marks the cells that hold
plane values (the diffusion loss is masked to them) and :meth:`patch_mask` the p x p patches
that hold at least one valid cell (the DiT drops the others before its blocks).
CarlaSC (T', X', Y', Z') = (8, 64, 64, 4): 76 x 76 canvas, 1416 of 1444 patches of 2 x 2 kept;
Occ3D-Waymo (8, 100, 100, 8): 116 x 116.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from occworld4d.registry import MODELS

PLANE_KEYS = ('xy', 'xz', 'yz', 'tx', 'ty', 'tz')
SPATIAL_PLANES = ('xy', 'xz', 'yz')
TIME_PLANES = ('tx', 'ty', 'tz')


@MODELS.register_module()
class PaddedRollout:
    """Roll six HexPlane planes out into one padded square canvas and back.

    Used as the ``latent_adapter`` of :class:`~occworld4d.models.generators.LatentDiffusion`
    (``to_latent`` / ``from_latent``). Holds no parameters.

    Args:
        hex_shape: plane sizes (T', X', Y', Z'); X' must equal Y'.
        voxel_shape: optional voxel window (T, X, Y, Z) the planes describe; needed only by
            :meth:`region_mask` (voxel box -> latent cells that the box influences).
    """

    def __init__(self, hex_shape: Sequence[int], voxel_shape: Optional[Sequence[int]] = None):
        if len(hex_shape) != 4:
            raise ValueError(f'PaddedRollout: hex_shape must be (T\', X\', Y\', Z\'), '
                             f'got {hex_shape}')
        t, x, y, z = (int(v) for v in hex_shape)
        if x != y:
            raise ValueError(f'PaddedRollout needs square xy planes (X\' = Y\'), '
                             f'got X\'={x}, Y\'={y}')
        self.hex_shape = (t, x, y, z)
        self.canvas_size = x + t + z
        self.voxel_shape = tuple(int(v) for v in voxel_shape) if voxel_shape is not None else None

    # ---------------------------------------------------------------- layout
    @property
    def plane_shapes(self) -> Dict[str, Tuple[int, int]]:
        """Spatial size of each plane, axes in the order of the key's letters."""
        t, x, y, z = self.hex_shape
        size = dict(t=t, x=x, y=y, z=z)
        return {k: (size[k[0]], size[k[1]]) for k in PLANE_KEYS}

    def _slots(self) -> Dict[str, Tuple[slice, slice, bool]]:
        """key -> (row slice, column slice, transposed) of each plane on the canvas."""
        t, x, y, z = self.hex_shape
        return {
            'xy': (slice(0, x), slice(0, y), False),
            'xz': (slice(0, x), slice(y, y + z), False),
            'tx': (slice(0, x), slice(y + z, y + z + t), True),
            'ty': (slice(x, x + t), slice(0, y), False),
            'tz': (slice(x, x + t), slice(y, y + z), False),
            'yz': (slice(x + t, x + t + z), slice(0, y), True),
        }

    def _check(self, planes: Dict[str, Tensor]) -> None:
        missing = [k for k in PLANE_KEYS if k not in planes]
        if missing:
            raise KeyError(f'PaddedRollout.rollout: planes {missing} missing; expected keys '
                           f'{PLANE_KEYS}, got {sorted(planes)}')
        ref = planes['xy']
        for k, shape in self.plane_shapes.items():
            p = planes[k]
            if p.ndim != 4 or tuple(p.shape[-2:]) != shape or p.shape[:2] != ref.shape[:2]:
                raise ValueError(f'PaddedRollout.rollout: plane {k!r} should be (B, C, {shape[0]}, '
                                 f'{shape[1]}) with the B, C of xy {tuple(ref.shape[:2])}, got '
                                 f'{tuple(p.shape)}')

    # ------------------------------------------------------------ transforms
    def rollout(self, planes: Dict[str, Tensor]) -> Tensor:
        """Six planes (B, C, a, b) -> canvas (B, C, S, S), zeros on the padding."""
        self._check(planes)
        ref = planes['xy']
        S = self.canvas_size
        canvas = ref.new_zeros(ref.shape[0], ref.shape[1], S, S)  # (B, C, S, S)
        for key, (rows, cols, transposed) in self._slots().items():
            plane = planes[key]
            canvas[:, :, rows, cols] = plane.transpose(-1, -2) if transposed else plane
        return canvas

    def unroll(self, canvas: Tensor) -> Dict[str, Tensor]:
        """Canvas (B, C, S, S) -> dict of the six planes (B, C, a, b) (contiguous copies)."""
        S = self.canvas_size
        if canvas.ndim != 4 or tuple(canvas.shape[-2:]) != (S, S):
            raise ValueError(f'PaddedRollout.unroll expects (B, C, {S}, {S}), got '
                             f'{tuple(canvas.shape)}')
        planes = {}
        for key, (rows, cols, transposed) in self._slots().items():
            block = canvas[:, :, rows, cols]
            planes[key] = (block.transpose(-1, -2) if transposed else block).contiguous()
        return planes

    # The latent-adapter interface of LatentDiffusion.
    def to_latent(self, planes: Dict[str, Tensor]) -> Tensor:
        return self.rollout(planes)

    def from_latent(self, canvas: Tensor) -> Dict[str, Tensor]:
        return self.unroll(canvas)

    # ----------------------------------------------------------------- masks
    def plane_mask(self, keys: Sequence[str] = PLANE_KEYS,
                   device: Optional[torch.device] = None) -> Tensor:
        """Bool (S, S): True on the cells of the named planes."""
        S = self.canvas_size
        mask = torch.zeros(S, S, dtype=torch.bool, device=device)
        slots = self._slots()
        for key in keys:
            if key not in slots:
                raise KeyError(f'unknown plane {key!r}; expected one of {PLANE_KEYS}')
            rows, cols, _ = slots[key]
            mask[rows, cols] = True
        return mask

    def valid_mask(self, device: Optional[torch.device] = None) -> Tensor:
        """Bool (S, S): True where the canvas holds a plane value, False on padding."""
        return self.plane_mask(PLANE_KEYS, device)

    def patch_mask(self, patch_size: int, device: Optional[torch.device] = None) -> Tensor:
        """Bool (S/p * S/p,): True for each p x p patch (row-major) holding any valid cell."""
        S, p = self.canvas_size, int(patch_size)
        if S % p:
            raise ValueError(f'canvas size {S} (hex_shape {self.hex_shape}) is not divisible '
                             f'by patch size {p}')
        valid = self.valid_mask(device).view(S // p, p, S // p, p)  # (S/p, p, S/p, p)
        return valid.any(dim=3).any(dim=1).reshape(-1)  # (N,)

    def region_mask(self, region: Sequence[int], device: Optional[torch.device] = None) -> Tensor:
        """Canvas cells whose plane value influences any voxel of a box.

        A HexPlane cell of plane ``ab`` is read by every voxel whose (a, b) coordinates fall
        in the cell's footprint, so it influences the box iff its footprint meets the box's
        projection onto (a, b). Every other cell only influences voxels outside the box and
        can be kept (``known``) when the box is regenerated.

        Args:
            region: (x0, x1, y0, y1, z0, z1[, t0, t1]) voxel box, half-open; the time range
                defaults to the whole window.

        Returns:
            bool (S, S): True = influenced by the box (to regenerate); False on padding.
        """
        if self.voxel_shape is None:
            raise ValueError('PaddedRollout.region_mask needs voxel_shape=(T, X, Y, Z) in its '
                             'config')
        if len(region) not in (6, 8):
            raise ValueError(f'region must be (x0, x1, y0, y1, z0, z1[, t0, t1]), got {region}')
        T, X, Y, Z = self.voxel_shape
        bounds = dict(x=region[0:2], y=region[2:4], z=region[4:6],
                      t=region[6:8] if len(region) == 8 else (0, T))
        full = dict(t=T, x=X, y=Y, z=Z)
        for axis, (lo, hi) in bounds.items():
            if not 0 <= lo < hi <= full[axis]:
                raise ValueError(f'region {axis} range [{lo}, {hi}) is empty or outside '
                                 f'[0, {full[axis]})')
        t, x, y, z = self.hex_shape
        cells = dict(t=t, x=x, y=y, z=z)

        def hit(axis: str) -> Tensor:
            n = cells[axis]
            step = full[axis] / n  # voxels per plane cell along this axis
            lo = torch.arange(n, dtype=torch.float64) * step
            hit = (lo < bounds[axis][1]) & (lo + step > bounds[axis][0])  # (n,)
            return hit.to(device) if device is not None else hit

        planes = {k: hit(k[0])[:, None] & hit(k[1])[None, :] for k in PLANE_KEYS}
        return self.rollout({k: v[None, None].float() for k, v in planes.items()})[0, 0].bool()
