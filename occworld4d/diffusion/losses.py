"""Element-wise likelihood terms and the masked per-sample mean used by the diffusion losses."""
import math
from typing import Optional

import torch


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor,
              logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) element-wise, in nats.

    All inputs broadcast to a common shape, which the result has.
    """
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) +
                  (mean1 - mean2)**2 * torch.exp(-logvar2))


def discretized_gaussian_log_likelihood(x: torch.Tensor, means: torch.Tensor,
                                        log_scales: torch.Tensor,
                                        bin_width: float = 2.0 / 255.0) -> torch.Tensor:
    """log P(x) of a Gaussian integrated over the bin of width ``bin_width`` around ``x``.

    The decoder term L_0 of improved DDPM: data assumed in [-1, 1]; the two outermost bins
    extend to -inf / +inf. Element-wise, in nats.

    Args:
        x: (B, ...) targets.
        means: (B, ...) Gaussian means.
        log_scales: (B, ...) log standard deviations.
        bin_width: width of one bin (2/255 for 8-bit data scaled to [-1, 1]).
    """
    inv_std = torch.exp(-log_scales)
    cdf_plus = torch.special.ndtr(inv_std * (x - means + bin_width / 2))
    cdf_minus = torch.special.ndtr(inv_std * (x - means - bin_width / 2))
    tiny = 1e-12
    log_cdf_plus = torch.log(cdf_plus.clamp(min=tiny))
    log_one_minus_cdf_minus = torch.log((1.0 - cdf_minus).clamp(min=tiny))
    log_delta = torch.log((cdf_plus - cdf_minus).clamp(min=tiny))
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_minus, log_delta))


def masked_mean(values: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sample mean over all non-batch elements, counting only valid elements.

    Masked elements contribute exactly nothing, even when ``values`` holds inf/NaN there
    (``torch.where``, not a product).

    Args:
        values: (B, ...) element-wise losses.
        mask: None, or bool/float broadcastable to ``values``; nonzero = valid. A float mask
            weights the elements: sum(m * v) / sum(m) per sample.

    Returns:
        (B,) means. A sample without any valid element gets 0.
    """
    if mask is None:
        return values.flatten(1).mean(dim=1)
    weight = mask.to(values.dtype).expand_as(values)
    valid = weight != 0
    total = torch.where(valid, values * weight, values.new_zeros(())).flatten(1).sum(dim=1)
    count = weight.flatten(1).sum(dim=1)
    return total / count.clamp(min=torch.finfo(values.dtype).tiny)


NATS_PER_BIT = math.log(2.0)
