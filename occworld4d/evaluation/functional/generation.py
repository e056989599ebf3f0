"""Generation-quality statistics on feature vectors: FID, KID, precision / recall, IS, TC.

All functions take numpy arrays or torch tensors of features (N, D) and compute in
float64 numpy. They know nothing about occupancy: the features come from the
toolkit's feature extractor (:mod:`occworld4d.evaluation.feature_extractor`).
"""
from typing import Tuple

import numpy as np


def _as_feats(x, name: str, ndim: int = 2) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != ndim:
        raise ValueError(f'{name} must have {ndim} dims, got shape {x.shape}')
    if not np.isfinite(x).all():
        raise ValueError(f'{name} contains NaN or Inf')
    return x


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigen decomposition)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance of two Gaussians N(mu1, sigma1), N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), with
    tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the inner matrix is symmetric
    PSD, so both roots come from ``eigh`` (no complex parts, no ill-conditioned sqrtm).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(
        np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f'shapes do not match: mu {mu1.shape} / {mu2.shape}, sigma '
                         f'{s1.shape} / {s2.shape}')
    r1 = _sqrtm_psd(s1)
    w = np.linalg.eigvalsh(r1 @ s2 @ r1)  # eigenvalues of S1^(1/2) S2 S1^(1/2)
    tr_covmean = np.sqrt(np.clip(w, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def gaussian_stats(feats) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), N >= 2."""
    f = _as_feats(feats, 'feats')
    if f.shape[0] < 2:
        raise ValueError(f'need at least 2 feature vectors, got {f.shape[0]}')
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def fid(feats_a, feats_b) -> float:
    """Frechet Inception-style distance between two feature sets (N_a, D), (N_b, D)."""
    mu_a, s_a = gaussian_stats(feats_a)
    mu_b, s_b = gaussian_stats(feats_b)
    return frechet_distance(mu_a, s_a, mu_b, s_b)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / D + 1)^3, the KID kernel. (N, D), (M, D) -> (N, M)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (diagonal terms excluded)."""
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(feats_a, feats_b, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> Tuple[float, float]:
    """Kernel Inception-style distance: unbiased MMD^2 over random subsets.

    Args:
        feats_a, feats_b: (N_a, D), (N_b, D).
        num_subsets: number of subsets drawn (without replacement inside a subset).
        subset_size: subset size, capped at min(N_a, N_b).
        seed: seed of the subset draws (results are deterministic).

    Returns:
        (mean, std) of the per-subset MMD^2.
    """
    a, b = _as_feats(feats_a, 'feats_a'), _as_feats(feats_b, 'feats_b')
    if a.shape[1] != b.shape[1]:
        raise ValueError(f'feature dims differ: {a.shape[1]} vs {b.shape[1]}')
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f'KID needs at least 2 samples per set, got {a.shape[0]}, {b.shape[0]}')
    rng = np.random.default_rng(seed)
    vals = [mmd2_unbiased(a[rng.choice(a.shape[0], m, replace=False)],
                          b[rng.choice(b.shape[0], m, replace=False)])
            for _ in range(num_subsets)]
    return float(np.mean(vals)), float(np.std(vals))


def _pairwise_dist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, M) of a block of rows x (n, D) to y (M, D)."""
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * x @ y.T
    return np.sqrt(np.clip(d2, 0, None))


def knn_radii(feats: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Distance of every sample to its k-th nearest other sample (N,).

    Rows are processed ``chunk`` at a time, so memory is O(N x chunk), not O(N^2).
    """
    feats = np.asarray(feats, np.float64)
    if feats.shape[0] <= k:
        raise ValueError(f'k={k} needs more than {k} samples, got {feats.shape[0]}')
    if chunk < 1:
        raise ValueError(f'chunk must be >= 1, got {chunk}')
    out = np.empty(feats.shape[0])
    for i in range(0, feats.shape[0], chunk):
        d = _pairwise_dist(feats[i:i + chunk], feats)  # (n, N)
        out[i:i + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0: the sample itself
    return out


def manifold_coverage(queries: np.ndarray, points: np.ndarray, radii: np.ndarray,
                      chunk: int = 1024) -> float:
    """Fraction of ``queries`` (Q, D) within ``radii[j]`` of some ``points[j]`` (P, D).

    Queries are processed ``chunk`` at a time (memory O(chunk x P)).
    """
    inside = np.empty(queries.shape[0], bool)
    for i in range(0, queries.shape[0], chunk):
        d = _pairwise_dist(queries[i:i + chunk], points)  # (q, P)
        inside[i:i + chunk] = (d <= radii[None]).any(1)
    return float(inside.mean())


def precision_recall(real, fake, k: int = 3, chunk: int = 1024) -> Tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

    precision = fraction of fake samples inside the real manifold (within the k-NN
    radius of at least one real sample); recall = fraction of real samples inside the
    fake manifold. Distances are computed ``chunk`` rows at a time, so memory is
    O(N x chunk) (32k vectors: 256 MiB per block at the default instead of 8 GiB for the
    full matrix); the result does not depend on ``chunk``.

    Args:
        real: (N_r, D). fake: (N_f, D). k: neighbourhood size. chunk: rows per block.

    Returns:
        (precision, recall) in [0, 1].
    """
    r, f = _as_feats(real, 'real'), _as_feats(fake, 'fake')
    if r.shape[1] != f.shape[1]:
        raise ValueError(f'feature dims differ: {r.shape[1]} vs {f.shape[1]}')
    r_rad, f_rad = knn_radii(r, k, chunk), knn_radii(f, k, chunk)
    return manifold_coverage(f, r, r_rad, chunk), manifold_coverage(r, f, f_rad, chunk)


def inception_score(probs, splits: int = 10) -> Tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split; (mean, std) over splits.

    Args:
        probs: (N, C) class probabilities (rows sum to 1).
        splits: number of equal splits (N must be >= splits).
    """
    p = _as_feats(probs, 'probs')
    if (p < 0).any() or not np.allclose(p.sum(1), 1, atol=1e-4):
        raise ValueError('probs rows must be probability distributions (>= 0, sum 1)')
    if p.shape[0] < splits:
        raise ValueError(f'need at least {splits} samples for {splits} splits, got {p.shape[0]}')
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        with np.errstate(divide='ignore', invalid='ignore'):
            kl = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def temporal_consistency(feats) -> float:
    """Mean cosine similarity of consecutive frames' features, feats (N, T, D), T >= 2."""
    f = _as_feats(feats, 'feats', ndim=3)
    if f.shape[1] < 2:
        raise ValueError(f'temporal consistency needs T >= 2 frames, got {f.shape[1]}')
    a, b = f[:, :-1], f[:, 1:]  # (N, T-1, D) each
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return float((num / np.maximum(den, 1e-12)).mean())
