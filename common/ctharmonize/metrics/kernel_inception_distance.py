"""KID: the kernel (Inception) distance of Bińkowski et al. 2018, paper 004's Table IV measure.

KID is the unbiased estimate of the squared maximum mean discrepancy (MMD², Gretton et al. 2012) between
two feature sets X (m, D) and Y (n, D) under the polynomial kernel ``k(x, y) = (xᵀy / D + 1)³``:

``MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (n(n−1)) − 2 Σ_{i,j} k(x_i, y_j) / (mn)``

(diagonals left out of the within-set sums, so the estimate is unbiased and can be slightly negative).
:func:`kernel_inception_distance` averages it over ``n_subsets`` random subsets of ``subset_size`` rows of
each set (drawn without replacement, seeded), and reports the mean and SD over subsets, as the reference
code (``polynomial_mmd_averages``) does. Units: the kernel's (features are typically O(1): dimensionless);
lower is better, ≈ 0 for two samples of one distribution. :func:`kid` embeds CT slices first, in the project's
CT feature network space by default (:func:`~ctharmonize.metrics.feature_embeddings`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ctharmonize.metrics.feature_fid import Images, _resolve_network, feature_embeddings

__all__ = ["KIDResult", "kernel_inception_distance", "kid", "mmd2_unbiased", "polynomial_kernel"]

#: defaults of the reference code and spec 004.7 #9: 100 subsets of min(1000, N) rows
N_SUBSETS = 100
SUBSET_SIZE = 1000


@dataclass(frozen=True)
class KIDResult:
    """KID over subsets: ``mean`` and ``std`` (SD over subsets, ddof 0 as the reference code) of the
    ``values`` (n_subsets,) of MMD²_u, each on ``subset_size`` rows of both sets."""

    mean: float
    std: float
    subset_size: int
    values: np.ndarray = field(repr=False)

    @property
    def n_subsets(self) -> int:
        return int(self.values.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the per-subset values)."""
        return {"kid": self.mean, "kid_std": self.std, "n_subsets": self.n_subsets, "subset_size": self.subset_size}


def _features(features: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return f


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """Gram matrix (N1, N2) of ``k(x, y) = (gamma xᵀy + coef0)^degree`` for rows of x (N1, D) and y (N2, D);
    ``gamma`` None = 1/D (KID's kernel)."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sets must share D, got {x.shape} and {y.shape}")
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return (g * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(features_1: np.ndarray, features_2: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """Unbiased MMD² (module docstring) between feature sets (m, D) and (n, D), m, n >= 2, under the
    :func:`polynomial_kernel`."""
    x, y = _features(features_1, "features_1"), _features(features_2, "features_2")
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD² needs at least 2 rows per set, got {m} and {n}")
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.sum() / (m * n))


def kernel_inception_distance(features_1: np.ndarray, features_2: np.ndarray, n_subsets: int = N_SUBSETS,
                              subset_size: int = SUBSET_SIZE, seed: int | None = 0, degree: int = 3,
                              gamma: float | None = None, coef0: float = 1.0) -> KIDResult:
    """KID between feature sets (N1, D) and (N2, D): :func:`mmd2_unbiased` on ``n_subsets`` random subsets of
    ``min(subset_size, N1, N2)`` rows of each set (without replacement; ``numpy.random.default_rng(seed)``:
    the same seed gives the same subsets), averaged. Symmetric in distribution, not bit for bit (the draws
    differ)."""
    x, y = _features(features_1, "features_1"), _features(features_2, "features_2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sets must be (N1, D) and (N2, D), got {x.shape} and {y.shape}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")
    size = min(int(subset_size), x.shape[0], y.shape[0])
    if size < 2:
        raise ValueError(f"KID needs subsets of at least 2 rows, got {size} (sets of {x.shape[0]} and {y.shape[0]})")
    rng = np.random.default_rng(seed)
    values = np.empty(int(n_subsets))
    for s in range(int(n_subsets)):
        a = x[rng.choice(x.shape[0], size, replace=False)]
        b = y[rng.choice(y.shape[0], size, replace=False)]
        values[s] = mmd2_unbiased(a, b, degree, gamma, coef0)
    return KIDResult(float(values.mean()), float(values.std()), size, values)


def kid(real_images: Images, fake_images: Images, network: nn.Module | str | os.PathLike | None = None,
        n_subsets: int = N_SUBSETS, subset_size: int = SUBSET_SIZE, seed: int | None = 0, batch_size: int = 8,
        stages: Sequence[int] | None = None, intensity: str = "unit",
        device: str | torch.device | None = None) -> KIDResult:
    """KID between two slice sets (N, 1, H, W) in ``network``'s feature space: :func:`kernel_inception_distance`
    of their :func:`~ctharmonize.metrics.feature_embeddings` (same ``network``, ``stages``, ``intensity``
    ([-1, 1] "unit" by default, or "hu") and preprocessing as :func:`~ctharmonize.metrics.fid`). ``network``
    None = the shipped ``CTKernelFeatures`` (last stage, 128-d; not comparable with Inception KIDs), a path =
    an Inception-style network file. Unlike FID, KID is unbiased for small sets (paper 004 reports it where
    FID is skipped)."""
    net = _resolve_network(network)
    kwargs: dict[str, Any] = {"batch_size": batch_size, "stages": stages, "intensity": intensity, "device": device}
    real = feature_embeddings(real_images, net, **kwargs)
    fake = feature_embeddings(fake_images, net, **kwargs)
    return kernel_inception_distance(real, fake, n_subsets=n_subsets, subset_size=subset_size, seed=seed)
