"""UniScene's occupancy VAE: per-frame 2D encoder, temporal 3D decoder, continuous KL latent.

Each frame (X, Y, Z) is embedded (K -> E = 8, Z folded: 128 channels) and encoded by a 2D
ResNet encoder (ch 64, mult (1, 2, 4), 2 blocks a level, axial H / W attention with 2 heads
at 50 x 50 and in the middle; ReLU style) to a Gaussian posterior (mu, log-variance) of
4 x 50 x 50 a frame. The decoder sees the whole clip (B, 4, T, 50, 50): a 1x1x1 conv to 256,
attention-residual blocks (1x1x1 convs with GroupNorm, axial attention over t, h and w),
then (1, 3, 3) transposed convs with stride (1, 2, 2) up to 128 channels at 200 x 200,
scored against the class table. Loss: CE x 10 + Lovasz + KL. 11,290,264 parameters at the
reference size (Arlo0o/UniScene, ``VAERes2D_DwT`` with ``Encoder2D_new2`` /
``Decoder3D_withT``).

Encoder attention: ``axial_mode='hw'`` (default) attends along H and along W as intended;
``axial_mode='reference'`` reproduces the released reference encoder exactly, whose 2D axial
blocks attend along W and along the per-head channel axis, never along H
(:class:`~occworld4d.models.tokenizers.blocks_2d.AxialAttnBlock2d`). Same parameters: the
configs that load official checkpoints turn it on.

KL: the correct KL(N(mu, exp(logvar)) || N(0, I)) by default. Quirk of the reference
(``kl_quirk=True``): it evaluates ``-0.5 mean(1 + s - exp(s) - mu^2)`` with the standard
deviation ``s = exp(logvar / 2)`` where the log-variance belongs.

Shapes: B batch, T frames, X, Y, Z voxels, C latent channels, K classes.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.models.losses import gaussian_kl
from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample
from .base import BaseTokenizer
from .blocks_2d import Encoder2d, SemanticEmbedding, group_norm, semantic_recon_loss
from .blocks_3d import AxialAttention3d


class GNAttentionResidualBlock3d(nn.Module):
    """x + [1x1x1 conv C -> C/2, GN, ReLU, 1x1x1 conv C/2 -> C, GN, axial t/h/w attention](x)."""

    def __init__(self, channels: int, num_heads: int = 2):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv3d(channels, channels // 2, 1, bias=False), group_norm(channels // 2),
            nn.ReLU(),
            nn.Conv3d(channels // 2, channels, 1, bias=False), group_norm(channels),
            AxialAttention3d(channels, num_heads))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class TemporalDecoder3d(nn.Module):
    """Clip decoder: (B, C_z, T, h, w) -> (B, out_channels, T, h * 2^n, w * 2^n).

    Args:
        z_channels: latent width (4).
        hidden: base width (64); the stages run at hidden * ch_mult[i].
        num_res_blocks: attention-residual blocks per stage (2).
        ch_mult: width multipliers ((4, 2, 1)).
        num_upsample: spatial doublings ((1, 4, 4) upsampling -> 2).
        out_channels: Z * E (128).
        num_heads: axial-attention heads (2).
    """

    def __init__(self, z_channels: int = 4, hidden: int = 64, num_res_blocks: int = 2,
                 ch_mult: Sequence[int] = (4, 2, 1), num_upsample: int = 2,
                 out_channels: int = 128, num_heads: int = 2):
        super().__init__()
        if num_upsample < 1 or num_upsample > len(ch_mult):
            raise ValueError(f'num_upsample must be in [1, {len(ch_mult)}], got {num_upsample}')
        c0 = hidden * ch_mult[0]
        self.conv_in = nn.Conv3d(z_channels, c0, 1, bias=False)
        self.res_stack = nn.Sequential(
            *[GNAttentionResidualBlock3d(c0, num_heads) for _ in range(num_res_blocks)],
            group_norm(c0), nn.ReLU())
        in_mult = (ch_mult[0],) + tuple(ch_mult)
        self.convts, self.stages = nn.ModuleList(), nn.ModuleList()
        for i in range(num_upsample):
            last = i == num_upsample - 1
            c_in, c_out = hidden * in_mult[i], (out_channels if last else hidden * ch_mult[i])
            self.convts.append(nn.ConvTranspose3d(c_in, c_out, (1, 3, 3), stride=(1, 2, 2),
                                                  padding=(0, 1, 1), output_padding=(0, 1, 1),
                                                  bias=False))
            if not last:
                self.stages.append(nn.Sequential(
                    *[GNAttentionResidualBlock3d(c_out, num_heads)
                      for _ in range(num_res_blocks)]))

    def forward(self, z: Tensor) -> Tensor:
        h = self.res_stack(self.conv_in(z))  # (B, C0, T, h, w)
        for i, convt in enumerate(self.convts):
            h = convt(h)  # (B, C_i, T, 2h, 2w)
            if i < len(self.stages):
                h = F.relu(self.stages[i](h))
        return h


@MODELS.register_module()
class UniSceneOccVAE(BaseTokenizer):
    """Occupancy KL-VAE of UniScene (stage 1 of its occupancy generation).

    Args:
        num_classes: K (18).
        height: Z voxels (16).
        embed_dim: E (8).
        ch, ch_mult, num_res_blocks, attn_resolutions, resolution: encoder (64, (1, 2, 4),
            2, (50,), 200).
        latent_channels: C, latent width a frame (4).
        dec_hidden, dec_ch_mult, dec_res_blocks: temporal decoder (64, (4, 2, 1), 2).
        ce_weight, lovasz_weight, kl_weight: loss weights (10, 1, 1).
        kl_quirk: reproduce the reference's KL (sigma in place of the log-variance).
        lean_lovasz: memory-lean Lovasz (same values and gradients).
        axial_mode: encoder attention, 'hw' (default) or 'reference' (see above).
    """

    def __init__(self, num_classes: int = 18, height: int = 16, embed_dim: int = 8,
                 ch: int = 64, ch_mult: Sequence[int] = (1, 2, 4), num_res_blocks: int = 2,
                 attn_resolutions: Sequence[int] = (50,), resolution: int = 200,
                 latent_channels: int = 4, dec_hidden: int = 64,
                 dec_ch_mult: Sequence[int] = (4, 2, 1), dec_res_blocks: int = 2,
                 dropout: float = 0.0, ce_weight: float = 10.0, lovasz_weight: float = 1.0,
                 kl_weight: float = 1.0, kl_quirk: bool = False, lean_lovasz: bool = True,
                 axial_mode: str = 'hw', data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(num_classes, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.semantic = SemanticEmbedding(num_classes, embed_dim, height)
        C = self.semantic.channels
        self.latent_channels = latent_channels
        self.encoder = Encoder2d(C, ch, ch_mult, num_res_blocks, attn_resolutions, resolution,
                                 out_channels=2 * latent_channels, dropout=dropout,
                                 style='uniscene', axial_mode=axial_mode)
        self.downsample = 2 ** (len(ch_mult) - 1)
        self.decoder = TemporalDecoder3d(latent_channels, dec_hidden, dec_res_blocks,
                                         dec_ch_mult, len(ch_mult) - 1, C)
        self.ce_weight, self.lovasz_weight, self.kl_weight = ce_weight, lovasz_weight, kl_weight
        self.kl_quirk = kl_quirk
        self.lean_lovasz = lean_lovasz

    def posterior(self, voxels: Tensor) -> Tuple[Tensor, Tensor]:
        """voxels (B, T, X, Y, Z) -> (mu, logvar), each (B, C, T, X / 4, Y / 4)."""
        B, T, X, Y, _ = voxels.shape
        if X % self.downsample or Y % self.downsample:
            raise ValueError(f'{type(self).__name__}: X, Y = {(X, Y)} must be divisible by '
                             f'{self.downsample}')
        x = self.semantic.fold(voxels).flatten(0, 1)  # (B T, Z E, X, Y)
        z = self.encoder(x).unflatten(0, (B, T)).transpose(1, 2)  # (B, 2C, T, h, w)
        mu, logvar = z.chunk(2, dim=1)  # 2 x (B, C, T, h, w)
        return mu, logvar

    def encode(self, voxels: Tensor, sample: bool = False, **cond) -> Tensor:
        """voxels (B, T, X, Y, Z) -> latent (B, C, T, X / 4, Y / 4): the posterior mean, or a
        sample of the posterior with ``sample=True``."""
        mu, logvar = self.posterior(voxels)
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu

    def decode(self, latent: Tensor, **cond) -> Tensor:
        """latent (B, C, T, h, w) -> logits (B, K, T, 4 h, 4 w, Z)."""
        if latent.ndim != 5 or latent.shape[1] != self.latent_channels:
            raise ValueError(f'{type(self).__name__}.decode expects a latent (B, '
                             f'{self.latent_channels}, T, h, w), got {tuple(latent.shape)}')
        feats = self.decoder(latent)  # (B, Z E, T, X, Y)
        return self.semantic.logits(feats.transpose(1, 2))  # (B, K, T, X, Y, Z)

    def kl_loss(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Mean KL per latent element (or the reference's quirk, see the module docstring)."""
        if self.kl_quirk:
            sigma = torch.exp(0.5 * logvar)
            return -0.5 * torch.mean(1 + sigma - torch.exp(sigma) - mu.pow(2))
        return gaussian_kl(mu, logvar, reduction='mean')

    def loss(self, inputs: Dict[str, Tensor],
             data_samples: Optional[List[OccDataSample]] = None) -> Dict[str, Tensor]:
        """CE x 10 + Lovasz + KL on a posterior sample."""
        voxels = inputs['voxels']
        self.semantic.check_voxels(voxels)
        mu, logvar = self.posterior(voxels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterised sample
        logits = self.decode(z)  # (B, K, T, X, Y, Z)
        losses = semantic_recon_loss(logits, voxels, self.ce_weight, self.lovasz_weight,
                                     lean=self.lean_lovasz)
        losses['loss_kl'] = self.kl_weight * self.kl_loss(mu, logvar)
        return losses
