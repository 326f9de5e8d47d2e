"""Fréchet distance between Gaussians against closed forms and an independent symmetric formula."""

import importlib

import numpy as np
import pytest

from ctharmonize.metrics import frechet_distance, frechet_distance_from_moments, gaussian_moments

fd_module = importlib.import_module("ctharmonize.metrics.frechet_distance")  # the package re-exports the function


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def psd_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fd_symmetric_form(mu1, s1, mu2, s2):
    """Tr((Σ1Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½): a symmetric PSD matrix, by eigenvalues (no sqrtm)."""
    r = psd_sqrt(s1)
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 4.0, 5), rng.uniform(0.1, 4.0, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance_from_moments(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)
    # one dimension: (m1 - m2)² + (s1 - s2)² with s the SD
    assert frechet_distance_from_moments([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0)


def test_full_covariances_match_symmetric_form_and_are_symmetric():
    rng = np.random.default_rng(1)
    for _ in range(5):
        mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
        s1, s2 = random_spd(rng, 6), random_spd(rng, 6)
        value = frechet_distance_from_moments(mu1, s1, mu2, s2)
        assert value == pytest.approx(fd_symmetric_form(mu1, s1, mu2, s2), rel=1e-8)
        assert frechet_distance_from_moments(mu2, s2, mu1, s1) == pytest.approx(value, rel=1e-8)
        assert value > 0


def test_feature_sets_use_mean_and_unbiased_covariance():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(40, 4)) @ rng.normal(size=(4, 4))
    b = rng.normal(size=(25, 4)) * 2.0 + 1.0
    mu, sigma = gaussian_moments(a)
    assert np.allclose(mu, a.mean(axis=0))
    assert np.allclose(sigma, np.cov(a.T, ddof=1))
    expected = fd_symmetric_form(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-8)


def test_identical_shifted_and_scaled_sets():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(50, 5))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    c = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert frechet_distance(a, a + c) == pytest.approx(c @ c, rel=1e-8)  # same Σ: only the means differ
    centred = a - a.mean(0)
    # Σ2 = 4 Σ1: Tr(Σ + 4Σ - 2·2Σ) = Tr(Σ)
    assert frechet_distance(centred, 2 * centred) == pytest.approx(np.trace(np.cov(a.T)), rel=1e-8)
    # fewer samples than dimensions (singular Σ, the small-test-set case): still ≈ 0 for identical sets
    wide = rng.normal(size=(8, 64))
    assert frechet_distance(wide, wide) == pytest.approx(0.0, abs=1e-6)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        frechet_distance(np.array([[0.0, np.nan], [1.0, 2.0]]), np.ones((3, 2)))
    with pytest.raises(ValueError):
        frechet_distance_from_moments(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


def test_non_finite_sqrtm_retries_with_diagonal_offset(monkeypatch):
    calls = []
    real_sqrtm = fd_module._sqrtm

    def flaky(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fd_module, "_sqrtm", flaky)
    rng = np.random.default_rng(4)
    s1, s2 = random_spd(rng, 3), random_spd(rng, 3)
    with pytest.warns(RuntimeWarning, match="adding 0.01"):
        value = frechet_distance_from_moments(np.zeros(3), s1, np.zeros(3), s2, eps=0.01)
    assert len(calls) == 2
    assert np.allclose(calls[1], (s1 + 0.01 * np.eye(3)) @ (s2 + 0.01 * np.eye(3)))
    tr = np.trace(real_sqrtm(calls[1])).real
    assert value == pytest.approx(np.trace(s1) + np.trace(s2) - 2 * tr)


def test_complex_parts_small_are_dropped_large_are_refused(monkeypatch):
    s = np.diag([1.0, 4.0])
    monkeypatch.setattr(fd_module, "_sqrtm", lambda a: np.diag([1.0, 4.0]) + 1e-6j)  # (Σ·Σ)^½ = Σ
    assert frechet_distance_from_moments(np.zeros(2), s, np.zeros(2), s) == pytest.approx(0.0, abs=1e-12)
    monkeypatch.setattr(fd_module, "_sqrtm", lambda a: np.diag([1.0, 4.0]) + 0.5j)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="imaginary"):
        frechet_distance_from_moments(np.zeros(2), s, np.zeros(2), s)
