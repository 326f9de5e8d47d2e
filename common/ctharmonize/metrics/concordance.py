"""Lin's concordance correlation coefficient (CCC) of two paired samples (Lin 1989; paper 002 eq. 9)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["lins_ccc"]


def lins_ccc(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Lin's CCC ``2 s_xy / (s_x² + s_y² + (mean x - mean y)²)`` of paired values, in [-1, 1].

    Moments are population ones (1/n, Lin's estimator): ``s_xy = mean((x - mean x)(y - mean y))``,
    ``s_x² = mean((x - mean x)²)``. Equals ``2 ρ σ_x σ_y / (σ_x² + σ_y² + (μ_x - μ_y)²)`` with ρ the
    Pearson correlation: 1 only when y = x, lowered by a shift (μ_x ≠ μ_y), a scale change and
    scatter. Unit-free; x and y must share a unit (any: HU, z-scores, feature values). Pairs with a
    NaN in either value are dropped. NaN when fewer than 2 pairs remain or the denominator is 0 (both
    constant and equal: agreement is perfect but undefined as a correlation).
    """
    a = np.asarray(x, dtype=float).ravel()
    b = np.asarray(y, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"lins_ccc: x and y differ in length {a.size} vs {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = np.mean(da * da) + np.mean(db * db) + (a.mean() - b.mean()) ** 2
    if denom == 0:
        return float("nan")
    return float(2.0 * np.mean(da * db) / denom)
