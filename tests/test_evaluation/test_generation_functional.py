"""FID / KID / precision-recall / IS / TC against closed forms and limiting cases."""
import numpy as np
import pytest

from occworld4d.evaluation.functional import (fid, frechet_distance, inception_score, kid,
                                              knn_radii, mmd2_unbiased, precision_recall,
                                              temporal_consistency)


def test_frechet_distance_closed_forms():
    mu1, mu2 = np.array([1.0, 2.0]), np.array([0.0, 0.0])
    # diagonal: |d|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([4.0, 1.0]), np.array([1.0, 9.0])
    expect = 5.0 + (2 - 1) ** 2 + (1 - 3) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect)
    # non-commuting 2x2: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for M = S1 S2
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    m = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    expect = 5.0 + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expect, rel=1e-10)
    # a singular covariance stays finite and real
    sing = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert np.isfinite(frechet_distance(mu1, sing, mu1, sing))
    assert frechet_distance(mu1, sing, mu1, sing) == pytest.approx(0.0, abs=1e-9)


def test_fid_self_zero_and_mean_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)
    shift = np.linspace(-1, 1, 8)
    # same covariance, shifted mean: exactly |shift|^2
    assert fid(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-8)
    # two independent samples of N(0, I) and N(mu, I): close to |mu|^2, grows with |mu|
    a = rng.normal(size=(4000, 4))
    vals = [fid(a, rng.normal(size=(4000, 4)) + s) for s in (0.0, 1.0, 2.0)]
    assert vals[0] < 0.02
    assert vals[1] == pytest.approx(4 * 1.0, rel=0.05)
    assert vals[2] == pytest.approx(4 * 4.0, rel=0.05)


def test_kid_unbiased_on_gaussians():
    rng = np.random.default_rng(1)
    # same distribution: the unbiased estimator averages to ~0 (the biased one would not)
    vals = [mmd2_unbiased(rng.normal(size=(40, 1)), rng.normal(size=(40, 1)))
            for _ in range(400)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))
    # 1-D, N(m, 1) vs N(0, 1): MMD^2 = (m^3 + 3m)^2 + 3 m^4 + 3 m^2 for k = (xy + 1)^3
    m = 0.5
    expect = (m ** 3 + 3 * m) ** 2 + 3 * m ** 4 + 3 * m ** 2
    mean, std = kid(rng.normal(size=(3000, 1)) + m, rng.normal(size=(3000, 1)),
                    num_subsets=20, subset_size=1000)
    assert mean == pytest.approx(expect, rel=0.15)
    assert std > 0
    same, _ = kid(rng.normal(size=(3000, 1)), rng.normal(size=(3000, 1)), 20, 1000)
    assert abs(same) < 0.05 * expect
    # deterministic by seed
    x, y = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    assert kid(x, y, 5, 50, seed=3) == kid(x, y, 5, 50, seed=3)


def test_precision_recall_limits():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 5))
    assert precision_recall(real, real.copy(), k=3) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0, k=3) == (0.0, 0.0)
    # fakes collapsed onto one real mode: high precision, low recall
    fake = real[:20] + 1e-3
    p, r = precision_recall(real, np.repeat(fake, 10, axis=0), k=3)
    assert p == 1.0 and r < 0.5


def _precision_recall_full(real, fake, k):
    """Reference: full N x N distance matrices by broadcasting (no chunks, no expansion)."""
    def dist(a, b):
        return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    r_rad = np.sort(dist(real, real), 1)[:, k]
    f_rad = np.sort(dist(fake, fake), 1)[:, k]
    d = dist(fake, real)  # (N_f, N_r)
    return (d <= r_rad[None]).any(1).mean(), (d.T <= f_rad[None]).any(1).mean()


def test_precision_recall_chunked_equals_full_matrix():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(150, 4))
    fake = rng.normal(size=(97, 4)) * 0.6 + 0.8
    p_ref, r_ref = _precision_recall_full(real, fake, 3)
    assert 0.1 < p_ref < 0.95 and 0.1 < r_ref < 0.95  # a case where membership matters
    radii = np.sort(np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1)), 1)[:, 5]
    for chunk in (1, 7, 64, 10_000):  # one row per block .. one block
        assert precision_recall(real, fake, k=3, chunk=chunk) == pytest.approx((p_ref, r_ref),
                                                                               abs=0)
        np.testing.assert_allclose(knn_radii(real, 5, chunk=chunk), radii, rtol=1e-9)
    with pytest.raises(ValueError, match='chunk'):
        knn_radii(real, 3, chunk=0)


def test_inception_score_limits():
    c = 5
    confident_diverse = np.eye(c)[np.arange(100) % c]
    assert inception_score(confident_diverse, splits=4)[0] == pytest.approx(c, rel=0.01)
    collapsed = np.tile(np.eye(c)[0], (100, 1))
    assert inception_score(collapsed, splits=4)[0] == pytest.approx(1.0)
    uniform = np.full((100, c), 1 / c)
    assert inception_score(uniform, splits=4)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='probability'):
        inception_score(np.ones((10, 3)), splits=2)


def test_temporal_consistency():
    f = np.random.default_rng(3).normal(size=(4, 1, 6))
    assert temporal_consistency(np.repeat(f, 5, axis=1)) == pytest.approx(1.0)
    flip = np.concatenate([f, -f, f], axis=1)
    assert temporal_consistency(flip) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match='T >= 2'):
        temporal_consistency(f)
