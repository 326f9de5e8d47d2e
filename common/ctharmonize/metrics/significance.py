"""Significance tests used by paper 000: paired Wilcoxon signed-rank and Mann-Whitney U."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["TestResult", "paired_wilcoxon", "mann_whitney_u"]


class TestResult(NamedTuple):
    """A test statistic, its two-sided p-value and the number of samples (pairs) used."""

    statistic: float
    pvalue: float
    n: int


def paired_wilcoxon(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of paired samples (``scipy.stats.wilcoxon(x, y)``).

    Pairs with a NaN are dropped. When every difference is zero the samples are identical:
    returns statistic 0, p = 1 (scipy would warn and divide by zero). Fewer than one
    non-zero pair -> NaN statistic and p.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired_wilcoxon: {x.size} vs {y.size} values; samples must be paired")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n == 0:
        return TestResult(float("nan"), float("nan"), 0)
    if np.all(x == y):
        return TestResult(0.0, 1.0, n)
    res = stats.wilcoxon(x, y, alternative="two-sided")
    return TestResult(float(res.statistic), float(res.pvalue), n)


def mann_whitney_u(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> TestResult:
    """Two-sided Mann-Whitney U test of two independent samples (``scipy.stats.mannwhitneyu``).

    Returns the U statistic of ``x``. NaNs are dropped; an empty sample gives NaN; ``n`` is
    ``len(x) + len(y)``.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    x = x[np.isfinite(x)]
    y = y[np.isfinite(y)]
    n = int(x.size + y.size)
    if x.size == 0 or y.size == 0:
        return TestResult(float("nan"), float("nan"), n)
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    return TestResult(float(res.statistic), float(res.pvalue), n)
