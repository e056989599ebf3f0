"""Vector quantizer shared by the VQ scene tokenizers (OccSora 4D, OccWorld 2D).

Nearest-code lookup over a codebook ``E`` of K codes of width D, with a
straight-through gradient, the VQ-VAE losses, optional EMA codebook updates, usage
statistics and optional dead-code restarts.

Loss (van den Oord et al. 2017), ``z_e`` encoder output, ``e = E[argmin_k |z_e - E_k|]``,
``sg`` stop-gradient, means over all elements::

    loss = mean((sg[z_e] - e) ** 2)         # codebook term: moves codes to the outputs
         + beta * mean((z_e - sg[e]) ** 2)  # commitment term: keeps outputs near codes

OccSora and OccWorld use beta = 1.0 (where the two terms weigh the same). With
``ema=True`` the codebook is updated by exponential moving averages of the assigned
encoder outputs instead of by gradients, and the loss is the commitment term only.
``legacy_beta=True`` puts beta on the codebook term instead (taming-transformers'
historical bug that the OccWorld / OccSora quantizer inherited; identical at beta = 1).

Shapes: B batch, D code width, ``*S`` any spatial axes (H, W or T, H, W), K codes.
"""
from typing import Dict, NamedTuple, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from occworld4d.registry import MODELS


class QuantizerOutput(NamedTuple):
    """What :meth:`VectorQuantizer.forward` returns.

    Attributes:
        quantized: (B, D, *S) codes with the straight-through gradient to the input.
        loss: scalar VQ loss (see the module docstring).
        indices: (B, *S) int64 code ids.
        perplexity: scalar, exp(entropy) of the code usage in this batch (1 = one code used,
            K = all codes used uniformly).
        dead_codes: scalar int64, codes unused for ``dead_window`` training steps.
    """
    quantized: Tensor
    loss: Tensor
    indices: Tensor
    perplexity: Tensor
    dead_codes: Tensor


@MODELS.register_module()
class VectorQuantizer(nn.Module):
    """Codebook of ``num_codes`` x ``code_dim`` with nearest-code lookup.

    Args:
        num_codes: K, codebook size (OccSora / OccWorld: 512).
        code_dim: D, code width (OccSora / OccWorld: 128).
        beta: weight of the commitment term (OccSora / OccWorld: 1.0).
        legacy_beta: put beta on the codebook term (reference behaviour; same at beta 1).
        ema: update the codebook by EMA of assigned outputs, not by gradient.
        ema_decay: EMA decay (0.99 as in VQ-VAE-2).
        ema_eps: Laplace smoothing of the EMA cluster sizes.
        dead_window: a code unused for this many training steps counts as dead.
        restart_dead: re-seed dead codes with random encoder outputs of the current batch
            (training only; the restart happens after the lookup of that batch).

    Under torch.distributed the usage counts and EMA sums are all-reduced and restarted codes
    are broadcast from rank 0, so every rank keeps the same codebook and statistics.
        chunk_size: rows of the (N, K) distance matrix computed at a time (memory bound:
            chunk_size x K floats instead of N x K).
    """

    def __init__(self, num_codes: int = 512, code_dim: int = 128, beta: float = 1.0,
                 legacy_beta: bool = False, ema: bool = False, ema_decay: float = 0.99,
                 ema_eps: float = 1e-5, dead_window: int = 100, restart_dead: bool = False,
                 chunk_size: int = 16384):
        super().__init__()
        if num_codes < 1 or code_dim < 1:
            raise ValueError(f'VectorQuantizer needs num_codes >= 1 and code_dim >= 1, got '
                             f'{num_codes} x {code_dim}')
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta
        self.legacy_beta = legacy_beta
        self.ema = ema
        self.ema_decay = ema_decay
        self.ema_eps = ema_eps
        self.dead_window = dead_window
        self.restart_dead = restart_dead
        self.chunk_size = chunk_size
        self.embedding = nn.Embedding(num_codes, code_dim)  # (K, D)
        nn.init.uniform_(self.embedding.weight, -1.0 / num_codes, 1.0 / num_codes)
        # Training steps since each code was last picked (dead-code statistics).
        self.register_buffer('steps_unused', torch.zeros(num_codes, dtype=torch.long))
        if ema:
            self.embedding.weight.requires_grad_(False)
            self.register_buffer('ema_cluster_size', torch.zeros(num_codes))
            self.register_buffer('ema_embed_sum', self.embedding.weight.detach().clone())

    @property
    def codebook(self) -> Tensor:
        """(K, D) code vectors."""
        return self.embedding.weight

    @torch.no_grad()
    def lookup(self, flat: Tensor) -> Tensor:
        """Nearest code of each row, computed ``chunk_size`` rows at a time.

        Args:
            flat: (N, D) vectors.

        Returns:
            (N,) int64 code ids, argmin_k |flat_n - E_k|^2 (ties: lowest id).
        """
        # fp32 distances even under mixed precision (a bf16 argmin picks wrong codes)
        codes = self.codebook.detach().float()  # (K, D)
        code_sq = codes.pow(2).sum(1)  # (K,)
        out = torch.empty(flat.shape[0], dtype=torch.long, device=flat.device)
        with torch.autocast(device_type=flat.device.type, enabled=False):
            for start in range(0, flat.shape[0], self.chunk_size):
                rows = flat[start:start + self.chunk_size].float()  # (n, D)
                # |z|^2 is the same for every code of a row, so it is left out of the argmin.
                dist = torch.addmm(code_sq, rows, codes.t(), alpha=-2.0)  # (n, K)
                out[start:start + rows.shape[0]] = dist.argmin(1)
        return out

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize channel-first features.

        Args:
            z: (B, D, *S) encoder outputs.

        Returns:
            :class:`QuantizerOutput`.
        """
        if z.ndim < 2 or z.shape[1] != self.code_dim:
            raise ValueError(f'VectorQuantizer expects (B, {self.code_dim}, ...) features, got '
                             f'{tuple(z.shape)}')
        z_last = z.movedim(1, -1)  # (B, *S, D)
        flat = z_last.reshape(-1, self.code_dim)  # (N, D)
        indices = self.lookup(flat.detach())  # (N,)
        z_q = F.embedding(indices, self.codebook).view(z_last.shape)  # (B, *S, D)

        commitment = F.mse_loss(z_last, z_q.detach())
        if self.ema:
            loss = self.beta * commitment
        else:
            codebook_term = F.mse_loss(z_q, z_last.detach())
            loss = (self.beta * codebook_term + commitment if self.legacy_beta
                    else codebook_term + self.beta * commitment)

        counts = torch.bincount(indices, minlength=self.num_codes)  # (K,)
        if self.training:
            counts = _all_reduce(counts)  # the whole (global) batch
            self._update_statistics(counts)
            if self.ema:
                self._ema_update(flat.detach(), indices, counts)
            if self.restart_dead:
                self._restart_dead_codes(flat.detach())
        perplexity = self.perplexity(counts)

        # Straight-through: forward value z_q, gradient of z_q passed unchanged to z.
        z_q = z_last + (z_q - z_last).detach()  # (B, *S, D)
        return QuantizerOutput(z_q.movedim(-1, 1), loss, indices.view(z_last.shape[:-1]),
                               perplexity, self.dead_codes())

    @staticmethod
    def perplexity(counts: Tensor) -> Tensor:
        """exp(-sum_k p_k log p_k) of the code usage histogram ``counts`` (K,)."""
        p = counts.float() / counts.sum().clamp(min=1)
        return torch.exp(-(p * torch.log(p.clamp(min=1e-10))).sum())

    def dead_codes(self) -> Tensor:
        """Number of codes unused for at least ``dead_window`` training steps."""
        return (self.steps_unused >= self.dead_window).sum()

    @torch.no_grad()
    def _update_statistics(self, counts: Tensor) -> None:
        self.steps_unused += 1
        self.steps_unused[counts > 0] = 0

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, indices: Tensor, counts: Tensor) -> None:
        d = self.ema_decay
        embed_sum = torch.zeros_like(self.ema_embed_sum).index_add_(0, indices,
                                                                    flat.float())  # (K, D)
        embed_sum = _all_reduce(embed_sum)  # counts are already global
        self.ema_cluster_size.mul_(d).add_(counts.float(), alpha=1 - d)
        self.ema_embed_sum.mul_(d).add_(embed_sum, alpha=1 - d)
        n = self.ema_cluster_size.sum()
        # Laplace smoothing keeps codes with a zero cluster size finite.
        size = (self.ema_cluster_size + self.ema_eps) / (n + self.num_codes * self.ema_eps) * n
        self.embedding.weight.copy_(self.ema_embed_sum / size.unsqueeze(1))

    @torch.no_grad()
    def _restart_dead_codes(self, flat: Tensor) -> None:
        dead = (self.steps_unused >= self.dead_window).nonzero().flatten()  # (M,)
        if dead.numel() == 0 or flat.shape[0] == 0:
            return
        pick = torch.randint(0, flat.shape[0], (dead.numel(),), device=flat.device)
        new = flat[pick].to(self.codebook.dtype).contiguous()  # (M, D)
        if _distributed():
            dist.broadcast(new, src=0)  # same new codes on every rank
        self.embedding.weight[dead] = new
        self.steps_unused[dead] = 0
        if self.ema:
            self.ema_cluster_size[dead] = 1.0
            self.ema_embed_sum[dead] = new

    @torch.no_grad()
    def snap(self, z: Tensor) -> Tensor:
        """Channel-first vectors (B, D, *S) -> their nearest codes (B, D, *S).

        A pure lookup (no usage statistics, EMA or restarts, in any mode): used to decode a
        diffusion sample, which lies near but off the codebook, from the inputs the decoder
        was trained on (as latent-diffusion's VQ interface quantizes before decoding).
        """
        if z.ndim < 2 or z.shape[1] != self.code_dim:
            raise ValueError(f'{type(self).__name__}.snap expects channel-first vectors '
                             f'(B, {self.code_dim}, ...), got {tuple(z.shape)}')
        flat = z.movedim(1, -1).reshape(-1, self.code_dim)  # (N, D)
        indices = self.lookup(flat).view(z.shape[0], *z.shape[2:])  # (B, *S)
        return self.get_codebook_entry(indices).to(z.dtype)

    def get_codebook_entry(self, indices: Tensor) -> Tensor:
        """Code ids (B, *S) -> channel-first codes (B, D, *S)."""
        if indices.dtype not in (torch.int64, torch.int32) or indices.ndim < 1:
            raise ValueError(f'code ids must be an integer tensor (B, ...), got {indices.dtype} '
                             f'{tuple(indices.shape)}')
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ValueError(f'code ids span [{int(indices.min())}, {int(indices.max())}], '
                             f'outside the codebook [0, {self.num_codes})')
        return F.embedding(indices.long(), self.codebook).movedim(-1, 1)  # (B, D, *S)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce(t: Tensor) -> Tensor:
    """Sum over ranks (a no-op outside torch.distributed)."""
    if _distributed():
        t = t.clone()
        dist.all_reduce(t)
    return t


def build_quantizer(cfg: Optional[dict], code_dim: int) -> nn.Module:
    """Build a tokenizer's quantizer for features of width ``code_dim``.

    ``cfg`` None or a ``VectorQuantizer`` config gets the OccSora / OccWorld defaults
    (512 codes, beta 1.0, code_dim = ``code_dim``) under its own keys; another registered type
    (e.g. a project's quantizer) is built from its config as given. Any quantizer must return
    :class:`QuantizerOutput` and have ``code_dim`` equal to the encoder width.
    """
    cfg = dict(cfg or {})
    if cfg.get('type', 'VectorQuantizer') == 'VectorQuantizer':
        cfg = {**dict(type='VectorQuantizer', num_codes=512, code_dim=code_dim, beta=1.0), **cfg}
    quantizer = MODELS.build(cfg)
    if getattr(quantizer, 'code_dim', None) != code_dim:
        raise ValueError(f'quantizer code_dim {getattr(quantizer, "code_dim", None)} must equal '
                         f'the encoder width (z_channels) {code_dim}')
    return quantizer


def vq_loss_terms(q: QuantizerOutput, vq_weight: float) -> Dict[str, Tensor]:
    """``loss_vq`` and the logged code-usage statistics of one quantizer output."""
    return dict(loss_vq=vq_weight * q.loss, code_perplexity=q.perplexity.detach(),
                dead_codes=q.dead_codes.detach().float())
