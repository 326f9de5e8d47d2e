"""Radiomic feature alignment by Welch's t-test, paper 003's Table II form.

Paper 003 §III-B2: on the test set, per kernel pair and feature, a Welch t-test between the source and
target kernels' distributions; the features with p < 0.01 form R. After harmonization the features of R
are compared (Welch again) between the harmonized images and real target-kernel images; Z ⊆ R are those no
longer significant (p >= 0.01). Table II reports ``100 |Z| / |R|``, averaged over the two directions.

Tables: (N, F) arrays, one row per sample (slice or subject: the rows are the test's independent
samples) and one column per feature, or one mapping per image (feature name → value, e.g.
:func:`~ctharmonize.evaluation.radiomics_features.extract_features`'s; a missing key is NaN). Values keep
pyradiomics' units; the measures are percentages.

A feature's test is **undefined** (p = NaN) when a group has fewer than 2 finite values, or when the
feature is constant within both groups (Welch's standard error is 0: t is 0/0 or ±inf). Undefined features
are reported by name and left out of every denominator. Non-finite values are dropped per group.
No multiple-testing correction (the paper applies none).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["ALIGNMENT_ALPHA", "FeatureAlignment", "feature_alignment", "feature_alignment_both_directions",
           "welch_pvalues"]

#: the paper's significance threshold ("A p-value threshold of < 0.01")
ALIGNMENT_ALPHA = 0.01

Table = np.ndarray | Sequence[Sequence[float]] | Sequence[Mapping[str, float]]


def _as_table(data: Table, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """(N, F) float array and its F column names; rows given as mappings are aligned to ``names``."""
    if isinstance(data, Sequence) and len(data) and isinstance(data[0], Mapping):
        names = list(names) if names is not None else [str(k) for k in data[0]]
        arr = np.array([[float(row.get(n, math.nan)) for n in names] for row in data], dtype=float)
        return arr.reshape(len(data), len(names)), names
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"a feature table must be (N, F), got shape {arr.shape}")
    if names is None:
        names = [f"feature_{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise ValueError(f"{len(names)} feature names for a table of {arr.shape[1]} features")
    return arr, list(names)


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return math.nan
    const_a, const_b = bool(np.all(a == a[0])), bool(np.all(b == b[0]))
    if const_a and const_b:
        return math.nan
    with warnings.catch_warnings():
        if const_a or const_b:  # scipy's "precision loss" warning is spurious for an exactly constant group
            warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def welch_pvalues(x: Table, y: Table, feature_names: Sequence[str] | None = None) -> np.ndarray:
    """Two-sided Welch t-test p-value per feature (F,) between tables x (N1, F) and y (N2, F).

    ``scipy.stats.ttest_ind(equal_var=False)`` on each column's finite values; NaN = undefined (see the
    module docstring).
    """
    xa, names = _as_table(x, feature_names)
    ya, _ = _as_table(y, names)
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(f"feature tables have {xa.shape[1]} and {ya.shape[1]} features")
    return np.array([_welch(xa[:, f], ya[:, f]) for f in range(xa.shape[1])], dtype=float)


def _percent(count: int, total: int) -> float:
    return 100.0 * count / total if total else math.nan


@dataclass(frozen=True)
class FeatureAlignment:
    """Welch-test alignment of one direction source → target at threshold ``alpha``.

    ``p_before`` (F,): source vs target; ``p_after`` (F,): harmonized vs target; NaN = undefined.
    """

    feature_names: tuple[str, ...]
    alpha: float
    p_before: np.ndarray
    p_after: np.ndarray

    @property
    def different_before(self) -> np.ndarray:
        """Bool (F,): R, the features significantly different before (p_before < alpha)."""
        return np.nan_to_num(self.p_before, nan=1.0) < self.alpha

    @property
    def aligned(self) -> np.ndarray:
        """Bool (F,): Z ⊆ R, the features of R no longer different after (p_after >= alpha)."""
        return self.different_before & (np.nan_to_num(self.p_after, nan=-1.0) >= self.alpha)

    @property
    def n_different_before(self) -> int:
        """|R| with a defined after-test: the denominator of :attr:`percent_aligned`."""
        return int(np.sum(self.different_before & np.isfinite(self.p_after)))

    @property
    def percent_aligned(self) -> float:
        """Paper 003 Table II: 100 |Z| / |R| (%); NaN when R is empty."""
        return _percent(int(self.aligned.sum()), self.n_different_before)

    @property
    def percent_same_before(self) -> float:
        """% of the defined features not significantly different before (p_before >= alpha)."""
        p = self.p_before[np.isfinite(self.p_before)]
        return _percent(int(np.sum(p >= self.alpha)), p.size)

    @property
    def percent_same_after(self) -> float:
        """% of the defined features not significantly different after (p_after >= alpha)."""
        p = self.p_after[np.isfinite(self.p_after)]
        return _percent(int(np.sum(p >= self.alpha)), p.size)

    @property
    def undefined_before(self) -> tuple[str, ...]:
        return tuple(n for n, p in zip(self.feature_names, self.p_before, strict=True) if not np.isfinite(p))

    @property
    def undefined_after(self) -> tuple[str, ...]:
        return tuple(n for n, p in zip(self.feature_names, self.p_after, strict=True) if not np.isfinite(p))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN → None)."""

        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {"alpha": self.alpha, "n_features": len(self.feature_names),
                "percent_aligned": num(self.percent_aligned), "n_different_before": self.n_different_before,
                "n_aligned": int(self.aligned.sum()), "percent_same_before": num(self.percent_same_before),
                "percent_same_after": num(self.percent_same_after),
                "undefined_before": list(self.undefined_before), "undefined_after": list(self.undefined_after),
                "p_before": {n: num(p) for n, p in zip(self.feature_names, self.p_before, strict=True)},
                "p_after": {n: num(p) for n, p in zip(self.feature_names, self.p_after, strict=True)}}


def feature_alignment(source: Table, target: Table, harmonized: Table, alpha: float = ALIGNMENT_ALPHA,
                      feature_names: Sequence[str] | None = None) -> FeatureAlignment:
    """Alignment of one direction: ``source`` (N_s, F) and ``harmonized`` (N_h, F, the source images
    harmonized to the target kernel) each against ``target`` (N_t, F, real target-kernel images).

    Columns are matched by name for rows given as mappings (names from ``feature_names`` or the source
    table's first row). ``alpha``: the paper's 0.01.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    src, names = _as_table(source, feature_names)
    tgt, _ = _as_table(target, names)
    har, _ = _as_table(harmonized, names)
    if not src.shape[1] == tgt.shape[1] == har.shape[1]:
        raise ValueError(f"feature tables have {src.shape[1]}, {tgt.shape[1]} and {har.shape[1]} features")
    return FeatureAlignment(tuple(names), float(alpha), welch_pvalues(src, tgt), welch_pvalues(har, tgt))


def feature_alignment_both_directions(features_a: Table, features_b: Table, a_to_b: Table, b_to_a: Table,
                                      alpha: float = ALIGNMENT_ALPHA,
                                      feature_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Paper 003 Table II for one kernel pair k_a ↔ k_b: each direction, then the mean of the two.

    Returns ``{"a_to_b": FeatureAlignment, "b_to_a": FeatureAlignment, "percent_aligned",
    "percent_same_before", "percent_same_after"}``; the means are NaN when a direction's value is.
    """
    ab = feature_alignment(features_a, features_b, a_to_b, alpha, feature_names)
    ba = feature_alignment(features_b, features_a, b_to_a, alpha, list(ab.feature_names))
    out: dict[str, Any] = {"a_to_b": ab, "b_to_a": ba}
    for key in ("percent_aligned", "percent_same_before", "percent_same_after"):
        out[key] = 0.5 * (getattr(ab, key) + getattr(ba, key))
    return out
