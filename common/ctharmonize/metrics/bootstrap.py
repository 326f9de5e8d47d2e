"""Bootstrap RMSE with a percentile confidence interval (paper 000 Table 1 form)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_rmse"]


def bootstrap_rmse(
    pred: Sequence[float] | np.ndarray,
    ref: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> tuple[float, float, float]:
    """Median bootstrap RMSE of paired values and its percentile confidence interval.

    Resamples the N (pred, ref) pairs (subjects) with replacement ``n_resamples`` times
    (``numpy.random.default_rng(seed).integers(0, N, size=(n_resamples, N))``: row b is
    resample b), computes ``sqrt(mean((pred - ref)²))`` for each resample and returns
    ``(median, low, high)`` with low/high the ``(1 - ci)/2`` and ``(1 + ci)/2`` percentiles
    (numpy's default linear interpolation). Values keep their unit (e.g. LAA-950 in %).
    Pairs with a NaN are dropped; no pairs -> (nan, nan, nan).
    """
    pred = np.asarray(pred, dtype=float).ravel()
    ref = np.asarray(ref, dtype=float).ravel()
    if pred.shape != ref.shape:
        raise ValueError(f"bootstrap_rmse: {pred.size} predictions vs {ref.size} references")
    if not 0 < ci < 1:
        raise ValueError(f"bootstrap_rmse: ci must be in (0, 1), got {ci}")
    keep = np.isfinite(pred) & np.isfinite(ref)
    err = (pred - ref)[keep]
    if err.size == 0:
        return (float("nan"),) * 3
    idx = np.random.default_rng(seed).integers(0, err.size, size=(int(n_resamples), err.size))
    rmse = np.sqrt(np.mean(err[idx] ** 2, axis=1))
    low, high = np.percentile(rmse, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return float(np.median(rmse)), float(low), float(high)
