"""Fréchet distance between two Gaussians fitted to feature sets (the distance behind FID).

``FD = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})`` (paper 003 eq. 15; Heusel et al. 2017), with the
means and covariances of the two sets of (N, D) feature vectors. Units: those of the features squared.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

__all__ = ["frechet_distance", "frechet_distance_from_moments", "gaussian_moments"]

#: largest |imaginary part| accepted on the diagonal of sqrtm(Σ1 Σ2) (the reference FID code's tolerance)
IMAG_ATOL = 1e-3


def gaussian_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and sample covariance (D, D) (``ddof=1``, as the reference FID code) of features (N, D).

    Needs N >= 2 finite rows; a non-finite value is a :class:`ValueError` (it would poison Σ silently).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {f.shape[0]}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm``, quiet about singular input (always the case when N <= D): the caller checks
    the result."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return np.asarray(linalg.sqrtm(a))


def _max_imag_diag(m: np.ndarray) -> float:
    return float(np.max(np.abs(np.diagonal(m).imag))) if np.iscomplexobj(m) else 0.0


def _trace_sqrt_product(sigma_1: np.ndarray, sigma_2: np.ndarray, eps: float) -> float:
    """``Tr((Σ1 Σ2)^{1/2})`` with the reference FID implementation's safeguards.

    ``scipy.linalg.sqrtm`` of the (non-symmetric) product; if that is not finite, or its diagonal has an
    imaginary part above :data:`IMAG_ATOL`, it is recomputed with ``eps`` added to both diagonals (a
    warning says so) and a still-bad result is a :class:`ValueError`. The real part is kept: the small
    imaginary parts are round-off of a matrix whose true square root is real (Σ1, Σ2 are PSD).
    """
    covmean = _sqrtm(sigma_1 @ sigma_2)
    if not np.all(np.isfinite(covmean)) or _max_imag_diag(covmean) > IMAG_ATOL:
        warnings.warn(f"frechet_distance: sqrtm(Σ1 Σ2) is singular or not real; adding {eps:g} to the "
                      "covariance diagonals", RuntimeWarning, stacklevel=3)
        offset = np.eye(sigma_1.shape[0]) * eps
        covmean = _sqrtm((sigma_1 + offset) @ (sigma_2 + offset))
        if not np.all(np.isfinite(covmean)):
            raise ValueError("frechet_distance: sqrtm(Σ1 Σ2) is not finite even with the diagonal offset")
        if _max_imag_diag(covmean) > IMAG_ATOL:
            raise ValueError(f"frechet_distance: sqrtm(Σ1 Σ2) has an imaginary diagonal component of "
                             f"{_max_imag_diag(covmean):.3g} (> {IMAG_ATOL:g})")
    return float(np.trace(covmean).real)


def frechet_distance_from_moments(mu_1: np.ndarray, sigma_1: np.ndarray, mu_2: np.ndarray,
                                  sigma_2: np.ndarray, eps: float = 1e-6) -> float:
    """FD between N(mu_1, sigma_1) and N(mu_2, sigma_2); means (D,), covariances (D, D).

    Round-off can make the formula slightly negative for (nearly) identical Gaussians: the result is
    clipped at 0. See :func:`_trace_sqrt_product` for ``eps``.
    """
    mu_1, mu_2 = np.atleast_1d(np.asarray(mu_1, np.float64)), np.atleast_1d(np.asarray(mu_2, np.float64))
    sigma_1, sigma_2 = np.atleast_2d(np.asarray(sigma_1, np.float64)), np.atleast_2d(np.asarray(sigma_2, np.float64))
    d = mu_1.shape[0]
    if mu_1.shape != (d,) or mu_2.shape != (d,) or sigma_1.shape != (d, d) or sigma_2.shape != (d, d):
        raise ValueError(f"frechet_distance: means {mu_1.shape}, {mu_2.shape} and covariances {sigma_1.shape}, "
                         f"{sigma_2.shape} do not describe Gaussians of one dimension")
    diff = mu_1 - mu_2
    value = float(diff @ diff + np.trace(sigma_1) + np.trace(sigma_2)
                  - 2.0 * _trace_sqrt_product(sigma_1, sigma_2, eps))
    return max(value, 0.0)


def frechet_distance(features_1: np.ndarray, features_2: np.ndarray, eps: float = 1e-6) -> float:
    """FD between Gaussians fitted to two feature sets (N1, D) and (N2, D) (:func:`gaussian_moments`).

    Symmetric, 0 for identical sets. Biased upwards for small N (more so when N < D, where Σ is
    singular): compare values only at equal set sizes.
    """
    f1, f2 = np.asarray(features_1), np.asarray(features_2)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"frechet_distance: feature sets must be (N1, D) and (N2, D), got {f1.shape} and {f2.shape}")
    mu_1, sigma_1 = gaussian_moments(f1)
    mu_2, sigma_2 = gaussian_moments(f2)
    return frechet_distance_from_moments(mu_1, sigma_1, mu_2, sigma_2, eps=eps)
