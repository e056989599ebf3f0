"""Small shared helpers of the diffusion engine: seeded noise and mask validation."""
from typing import Optional

import torch


def randn_like(x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Standard normal noise of x's shape, dtype and device, from ``generator`` if given."""
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device,
                       dtype=x.dtype).to(x.device)


def check_mask(mask: torch.Tensor, shape, name: str, device=None) -> torch.Tensor:
    """Validate that ``mask`` broadcasts to ``shape``; return it on ``device``.

    Raises:
        ValueError: naming ``name`` and both shapes when it does not broadcast.
    """
    shape = torch.Size(shape)
    if not torch.is_tensor(mask):
        raise ValueError(f'GaussianDiffusion: {name} must be a tensor, found '
                         f'{type(mask).__name__}')
    try:
        target = torch.broadcast_shapes(mask.shape, shape)
    except RuntimeError:
        target = None
    if target != shape:
        raise ValueError(f'GaussianDiffusion: {name} of shape {tuple(mask.shape)} does not '
                         f'broadcast to {tuple(shape)}')
    return mask if device is None else mask.to(device)
