"""KID against a direct double-loop implementation of the unbiased MMD² estimator (Bińkowski et al. 2018)."""

import importlib

import numpy as np
import pytest

from ctharmonize.metrics import (
    KIDResult,
    feature_embeddings,
    kernel_inception_distance,
    kid,
    mmd2_unbiased,
    polynomial_kernel,
)
from ctharmonize.networks import load_ct_kernel_features

kid_module = importlib.import_module("ctharmonize.metrics.kernel_inception_distance")


def k_direct(a, b):
    """(aᵀb / d + 1)³ for two vectors, written out."""
    d = len(a)
    dot = 0.0
    for i in range(d):
        dot += a[i] * b[i]
    return (dot / d + 1.0) ** 3


def mmd2_direct(x, y):
    """Gretton et al. 2012 eq. 3 (unbiased MMD²) with explicit loops over the pairs."""
    m, n = len(x), len(y)
    xx = sum(k_direct(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k_direct(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k_direct(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


def test_kernel_and_mmd_match_direct_loops():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 4)), rng.normal(size=(5, 4)) + 0.7
    gram = polynomial_kernel(x, y)
    assert gram.shape == (7, 5)
    assert gram[2, 3] == pytest.approx(k_direct(x[2], y[3]), rel=1e-12)
    assert mmd2_unbiased(x, y) == pytest.approx(mmd2_direct(x, y), rel=1e-10)  # unequal set sizes
    assert mmd2_unbiased(y, x) == pytest.approx(mmd2_direct(x, y), rel=1e-10)  # symmetric
    # the general kernel form: (gamma xᵀy + c)^p
    assert polynomial_kernel(x[:1], y[:1], degree=2, gamma=0.5, coef0=2.0)[0, 0] == pytest.approx(
        (0.5 * x[0] @ y[0] + 2.0) ** 2)


def test_kid_subsets_are_mmd_of_the_seeded_draws():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) * 1.5
    result = kernel_inception_distance(x, y, n_subsets=4, subset_size=6, seed=3)
    assert isinstance(result, KIDResult) and result.subset_size == 6 and result.n_subsets == 4
    draw = np.random.default_rng(3)  # the documented draw order: x's subset, then y's, per subset
    expected = []
    for _ in range(4):
        a = x[draw.choice(12, 6, replace=False)]
        b = y[draw.choice(9, 6, replace=False)]
        expected.append(mmd2_direct(a, b))
    assert np.allclose(result.values, expected, rtol=1e-10)
    assert result.mean == pytest.approx(np.mean(expected), rel=1e-10)
    assert result.std == pytest.approx(np.std(expected), rel=1e-10)
    assert result.to_dict() == {"kid": result.mean, "kid_std": result.std, "n_subsets": 4, "subset_size": 6}
    # the subset size is capped at the smaller set: every subset is then a permutation of all rows
    whole = kernel_inception_distance(x[:5], y[:5], n_subsets=3, subset_size=1000)
    assert whole.subset_size == 5 and whole.std == pytest.approx(0.0, abs=1e-12)
    assert whole.mean == pytest.approx(mmd2_direct(x[:5], y[:5]), rel=1e-10)


def test_kid_near_zero_for_one_distribution_larger_for_shifted():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same = kernel_inception_distance(a, b, n_subsets=20, subset_size=200, seed=0)
    assert abs(same.mean) < 3 * same.std + 1e-3  # unbiased: ≈ 0 (may be slightly negative)
    shifted = [kernel_inception_distance(a, b + s, n_subsets=20, subset_size=200, seed=0).mean for s in (0.3, 0.6, 1.2)]
    assert shifted[0] > same.mean + 5 * same.std
    assert shifted[0] < shifted[1] < shifted[2]


def test_kid_seeded_determinism():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(30, 5)), rng.normal(size=(40, 5)) + 0.2
    r1 = kernel_inception_distance(a, b, n_subsets=10, subset_size=10, seed=7)
    r2 = kernel_inception_distance(a, b, n_subsets=10, subset_size=10, seed=7)
    r3 = kernel_inception_distance(a, b, n_subsets=10, subset_size=10, seed=8)
    assert np.array_equal(r1.values, r2.values)
    assert not np.array_equal(r1.values, r3.values)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        mmd2_unbiased(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError):
        kernel_inception_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        kernel_inception_distance(np.array([[0.0, np.nan], [1.0, 2.0]]), np.ones((3, 2)))
    with pytest.raises(ValueError):
        kernel_inception_distance(np.zeros((4, 3)), np.zeros((4, 3)), n_subsets=0)


def test_kid_of_ct_slices_uses_the_feature_embeddings(monkeypatch):
    """kid() = kernel_inception_distance of feature_embeddings (the FID's preprocessing, not a copy of it)."""
    net = load_ct_kernel_features()
    rng = np.random.default_rng(5)
    smooth = np.clip(rng.normal(0.0, 0.02, size=(6, 1, 32, 32)), -1, 1).astype(np.float32) - 0.5
    sharp = np.clip(rng.normal(0.0, 0.2, size=(6, 1, 32, 32)), -1, 1).astype(np.float32) - 0.5
    result = kid(smooth, sharp, net, n_subsets=5, subset_size=4, seed=1)
    expected = kernel_inception_distance(feature_embeddings(smooth, net), feature_embeddings(sharp, net),
                                         n_subsets=5, subset_size=4, seed=1)
    assert np.allclose(result.values, expected.values, rtol=1e-10)
    assert result.mean > 0
    calls = []
    real = kid_module.feature_embeddings
    monkeypatch.setattr(kid_module, "feature_embeddings", lambda *a, **k: calls.append(k) or real(*a, **k))
    kid((smooth + 1) * 2048 - 1024, (sharp + 1) * 2048 - 1024, net, n_subsets=2, subset_size=3, intensity="hu")
    assert [c["intensity"] for c in calls] == ["hu", "hu"]
