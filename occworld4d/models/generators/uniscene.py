"""UniScene's stage-1b generator: :class:`LatentDiffusion` with the reference's ground-truth
evaluation prior as an explicit, off-by-default option (its issue #550).

The network is :class:`~occworld4d.models.denoisers.UniSceneOccDiT`; with
``reference_gt_prior=False`` this class behaves exactly as ``LatentDiffusion``.
"""
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

from occworld4d.registry import MODELS
from .latent_diffusion import LatentDiffusion


def occupancy_meta(voxels: Tensor, free_label: int = 17,
                   class_ids: Sequence[int] = (14, 15, 16),
                   norms: Sequence[float] = (25000.0, 7000.0, 16000.0, 20000.0)) -> Tensor:
    """The reference's 4 occupancy statistics of a frame, each clipped to [0, 1].

    ``[other, terrain, manmade, vegetation]`` = voxel counts / ``norms``, where the three
    named classes are ``class_ids`` (Occ3D-nuScenes: 14, 15, 16) and "other" is every
    non-free voxel of another class.

    Args:
        voxels: (B, X, Y, Z) class ids of one frame per sample.

    Returns:
        (B, 4) float32.
    """
    if voxels.ndim != 4:
        raise ValueError(f'occupancy_meta: expected one frame per sample (B, X, Y, Z), got '
                         f'{tuple(voxels.shape)}')
    v = voxels.long().flatten(1)  # (B, N)
    occupied = (v != free_label).sum(1).float()  # (B,)
    named = [(v == c).sum(1).float() for c in class_ids]
    other = occupied - sum(named)
    counts = torch.stack([other] + named, dim=1)  # (B, 4)
    return (counts / counts.new_tensor(norms)).clamp(max=1.0)


@MODELS.register_module()
class UniSceneLatentDiffusion(LatentDiffusion):
    """:class:`LatentDiffusion` with UniScene's evaluation prior as an explicit option.

    With ``reference_gt_prior=False`` (default) it IS ``LatentDiffusion``: generation sees
    only the conditions (the layout), never ground-truth occupancy.

    With ``reference_gt_prior=True`` it reproduces the reference's evaluation (its issue
    #550): sampling starts from ``x_T = noise + noise_prior_weight * x0_gt[:, :, prior_frame]``
    (the ground-truth latent of one frame, repeated over T) and, when the denoiser embeds
    ``meta``, the meta vector is :func:`occupancy_meta` of the ground-truth ``prior_frame``
    (in training too, as the reference trains with it). Both need ``inputs['voxels']``.

    Args:
        reference_gt_prior: enable the ground-truth prior (reproduction of the reference's
            table only; generation is no longer free of ground truth).
        noise_prior_weight: lambda of the noise prior (the reference's ``lambda_noise_prior``).
        prior_frame: the ground-truth frame of the prior and the meta (the reference: 0).
        meta_free_label, meta_class_ids, meta_norms: :func:`occupancy_meta`'s vocabulary.
        **kwargs: :class:`LatentDiffusion`'s arguments.
    """

    def __init__(self, *args, reference_gt_prior: bool = False,
                 noise_prior_weight: float = 0.05, prior_frame: int = 0,
                 meta_free_label: int = 17, meta_class_ids: Sequence[int] = (14, 15, 16),
                 meta_norms: Sequence[float] = (25000.0, 7000.0, 16000.0, 20000.0), **kwargs):
        super().__init__(*args, **kwargs)
        self.reference_gt_prior = bool(reference_gt_prior)
        self.noise_prior_weight = float(noise_prior_weight)
        self.prior_frame = int(prior_frame)
        self.meta_kwargs = dict(free_label=int(meta_free_label),
                                class_ids=tuple(int(c) for c in meta_class_ids),
                                norms=tuple(float(n) for n in meta_norms))
        if 'meta' in self.condition_keys and not self.reference_gt_prior:
            raise ValueError('UniSceneLatentDiffusion: the denoiser embeds "meta" (ground-truth '
                             'statistics); that is only allowed with reference_gt_prior=True')

    def _gt_voxels(self, inputs: Dict[str, Tensor], what: str) -> Tensor:
        voxels = inputs.get('voxels')
        if voxels is None:
            raise ValueError(f'UniSceneLatentDiffusion(reference_gt_prior=True): {what} needs '
                             f'the ground-truth inputs["voxels"] (B, T, X, Y, Z); got '
                             f'{sorted(inputs)}')
        if not -voxels.shape[1] <= self.prior_frame < voxels.shape[1]:
            raise ValueError(f'UniSceneLatentDiffusion: prior_frame {self.prior_frame} is '
                             f'outside a window of {voxels.shape[1]} frames')
        return voxels

    def conditions_from_inputs(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        cond = super().conditions_from_inputs(inputs)
        if self.reference_gt_prior and 'meta' in self.condition_keys and 'meta' not in cond:
            voxels = self._gt_voxels(inputs, 'the meta condition')
            cond['meta'] = occupancy_meta(voxels[:, self.prior_frame],
                                          **self.meta_kwargs).to(self.device)
        return cond

    def initial_noise(self, inputs: Dict[str, Tensor], batch_size: int) -> Optional[Tensor]:
        """The reference's x_T = noise + lambda * x0_gt[prior_frame] with the prior on; else
        None (plain noise: no ground truth in generation)."""
        if not self.reference_gt_prior:
            return None
        voxels = self._gt_voxels(inputs, 'the noise prior')
        x0 = self.encode_latent(voxels)  # (B, C, T, H, W)
        ref = x0[:, :, self.prior_frame:self.prior_frame + 1].expand_as(x0)
        return torch.randn_like(x0) + self.noise_prior_weight * ref
