"""Test-only stand-ins: a tiny HexPlane-shaped tokenizer and tiny LatentDiffusion configs.

Importing this module registers ``TinyHexTokenizer`` in MODELS (configs can pull it in with
``custom_imports=dict(imports=['tiny_models'])`` when this folder is on PYTHONPATH).
The tokenizer is deterministic and shape-exact (voxels (B, 4, 8, 8, 4), planes
(T', X', Y', Z') = (2, 4, 4, 2), canvas 8 x 8) so tests run in well under a second.
"""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.models.tokenizers.base import BaseTokenizer
from occworld4d.registry import MODELS

VOXELS = (4, 8, 8, 4)  # T, X, Y, Z
HEX = (2, 4, 4, 2)     # T', X', Y', Z'
K = 3                  # classes
C = 3                  # latent channels


@MODELS.register_module(force=True)
class TinyHexTokenizer(BaseTokenizer):
    """One-hot -> 1x1x1 linear -> mean-pool to the six planes; decode by broadcast sum."""

    def __init__(self, num_classes: int = K, channels: int = C, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.enc = nn.Linear(num_classes, channels)
        self.dec = nn.Linear(channels, num_classes)

    def encode(self, voxels: Tensor, **cond) -> Dict[str, Tensor]:
        f = self.enc(F.one_hot(voxels, self.num_classes).float())  # (B, T, X, Y, Z, C)
        f = f.permute(0, 5, 1, 2, 3, 4)  # (B, C, T, X, Y, Z)
        f = F.avg_pool3d(f.flatten(1, 2), 2).unflatten(1, (f.shape[1], -1))  # (B, C, T, X/2..)
        f = F.avg_pool1d(f.permute(0, 1, 3, 4, 5, 2).flatten(0, 4), 2)  # time /2
        B, Cc = voxels.shape[0], self.enc.out_features
        t, x, y, z = HEX
        f = f.view(B, Cc, x, y, z, t).permute(0, 1, 5, 2, 3, 4)  # (B, C, T', X', Y', Z')
        return dict(xy=f.mean((2, 5)), xz=f.mean((2, 4)), yz=f.mean((2, 3)),
                    tx=f.mean((4, 5)), ty=f.mean((3, 5)), tz=f.mean((3, 4)))

    def decode(self, planes: Dict[str, Tensor], **cond) -> Tensor:
        xy, xz, yz = planes['xy'], planes['xz'], planes['yz']
        tx, ty, tz = planes['tx'], planes['ty'], planes['tz']
        vol = (xy[:, :, None, :, :, None] + xz[:, :, None, :, None, :]
               + yz[:, :, None, None] + tx[..., None, None]
               + ty[:, :, :, None, :, None] + tz[:, :, :, None, None])  # (B, C, T', X', Y', Z')
        vol = vol.repeat_interleave(2, 2).repeat_interleave(2, 3).repeat_interleave(
            2, 4).repeat_interleave(2, 5)  # (B, C, T, X, Y, Z)
        return self.dec(vol.movedim(1, -1)).movedim(-1, 1)  # (B, K, T, X, Y, Z)

    def loss(self, inputs, data_samples=None):
        logits = self.reconstruct(inputs['voxels'])
        return dict(loss_ce=F.cross_entropy(logits, inputs['voxels']))


def tiny_model_cfg(**overrides) -> dict:
    cfg = dict(
        type='LatentDiffusion',
        tokenizer=dict(type='TinyHexTokenizer'),
        latent_adapter=dict(type='PaddedRollout', hex_shape=HEX, voxel_shape=VOXELS),
        denoiser=dict(type='RolloutDiT', hex_shape=HEX, in_channels=C, arch='DiT-tiny',
                      patch_size=2, num_frames=VOXELS[0]),
        diffusion=dict(type='GaussianDiffusion', num_timesteps=50, beta_schedule='linear',
                       prediction_type='eps', learn_sigma=True, loss_type='hybrid'),
        sample_cfg=dict(sampler='ddim', num_steps=4, guidance_scale=2.0),
    )
    cfg.update(overrides)
    return cfg


def random_voxels(B=2, seed=0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (B, *VOXELS), generator=g)
