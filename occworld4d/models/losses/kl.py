"""KL divergence of a diagonal Gaussian posterior to N(0, I)."""
from torch import Tensor


def gaussian_kl(mu: Tensor, logvar: Tensor, reduction: str = 'mean') -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per element, reduced.

    Args:
        mu, logvar: tensors of the same shape.
        reduction: 'mean' over all latent elements (DynamicCity), 'sum', or 'batchmean'
            (sum over elements, mean over the first axis).
    """
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    if reduction == 'mean':
        return kl.mean()
    if reduction == 'sum':
        return kl.sum()
    if reduction == 'batchmean':
        return kl.flatten(1).sum(1).mean()
    raise ValueError(f'unknown KL reduction {reduction!r}')
