"""Radiomic feature reproducibility as Lin's CCC per feature class, in paper 002's form and the conventional one.

Input: the features of N image pairs, ``source`` and ``reference`` arrays (N, F) (row i of both is pair i:
an input or harmonized image and its reference image), and the feature class of each of the F columns.

* Paper form (:func:`paper_ccc`, paper 002 eq. 9: "μ_s and σ_s ... of the radiomic features belonging to
  the same feature class in a synthesized image"): every feature is first normalized over the 2N images
  of the comparison (:func:`normalize_features`); then, per pair and class, the CCC between the
  source image's and the reference image's vectors of that class's normalized features. Summarized over
  the N pairs (mean ± SD).
* Conventional form (:func:`conventional_ccc`): per feature, the CCC over the N pairs of its raw values
  (a CCC is unchanged by one affine map of both x and y, so normalizing first changes nothing);
  summarized over the features of a class (mean ± SD, median).

Group ``"all"`` is every feature together (the paper's single cross-kernel number). Feature values keep
pyradiomics' units (HU, HU², counts, unitless); CCCs are unit-free, in [-1, 1].
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ctharmonize.metrics.concordance import lins_ccc

__all__ = ["ALL", "NORMALIZATIONS", "conventional_ccc", "groups_of", "normalize_features", "paper_ccc",
           "summarize_values"]

ALL = "all"
NORMALIZATIONS = ("zscore", "minmax")


def _arrays(source: np.ndarray, reference: np.ndarray, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    s = np.atleast_2d(np.asarray(source, dtype=float))
    r = np.atleast_2d(np.asarray(reference, dtype=float))
    if s.shape != r.shape or s.shape[1] != len(classes):
        raise ValueError(f"radiomics CCC: source {s.shape}, reference {r.shape} and {len(classes)} feature classes "
                         "do not match")
    return s, r


def groups_of(classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Group -> column indices: each class (first-seen order), then :data:`ALL`."""
    cols = {c: np.flatnonzero(np.asarray(classes) == c) for c in dict.fromkeys(classes)}
    return {**cols, ALL: np.arange(len(classes))}


def normalize_features(source: np.ndarray, reference: np.ndarray,
                       method: str = "zscore") -> tuple[np.ndarray, np.ndarray]:
    """Each feature (column) normalized over all 2N images of the comparison (the rows of both arrays).

    ``"zscore"``: ``(v - mean) / SD`` with the mean and population SD (ddof 0) of the 2N values;
    ``"minmax"``: ``(v - min) / (max - min)``, to [0, 1]. A feature constant over the 2N images becomes 0
    in every image. NaN values stay NaN and are left out of the statistics.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r}; use one of {', '.join(NORMALIZATIONS)}")
    s = np.asarray(source, dtype=float)
    r = np.asarray(reference, dtype=float)
    both = np.vstack([s, r])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        if method == "zscore":
            center, scale = np.nanmean(both, axis=0), np.nanstd(both, axis=0)
        else:
            center = np.nanmin(both, axis=0)
            scale = np.nanmax(both, axis=0) - center
    flat = ~(scale > 0)
    scale = np.where(flat, 1.0, scale)
    center = np.where(flat, 0.0, center)

    def norm(a: np.ndarray) -> np.ndarray:
        out = (a - center) / scale
        out[:, flat] = np.where(np.isnan(a[:, flat]), np.nan, 0.0)
        return out

    return norm(s), norm(r)


def paper_ccc(source: np.ndarray, reference: np.ndarray, classes: Sequence[str],
              normalization: str = "zscore") -> dict[str, np.ndarray]:
    """Group -> (N,) CCC of each pair between its two images' normalized feature vectors of the group."""
    s, r = _arrays(source, reference, classes)
    zs, zr = normalize_features(s, r, normalization)
    return {g: np.array([lins_ccc(zs[i, cols], zr[i, cols]) for i in range(s.shape[0])])
            for g, cols in groups_of(classes).items()}


def conventional_ccc(source: np.ndarray, reference: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Group -> CCC over the N pairs of each of the group's features (raw values), one per feature."""
    s, r = _arrays(source, reference, classes)
    per_feature = np.array([lins_ccc(s[:, j], r[:, j]) for j in range(s.shape[1])])
    return {g: per_feature[cols] for g, cols in groups_of(classes).items()}


def summarize_values(values: Sequence[float] | np.ndarray) -> dict[str, float | int]:
    """``n`` (values that are not NaN), ``n_undefined`` (NaN, e.g. undefined CCCs), ``mean``, ``sd`` (sample,
    ddof 1; NaN when n < 2), ``median``, ``min``, ``max`` of the values that are not NaN (an infinite PSNR
    of identical images stays infinite)."""
    v = np.asarray(values, dtype=float).ravel()
    ok = v[~np.isnan(v)]
    nan = float("nan")
    with np.errstate(invalid="ignore"):
        return {"n": int(ok.size), "n_undefined": int(v.size - ok.size),
                "mean": float(ok.mean()) if ok.size else nan, "sd": float(ok.std(ddof=1)) if ok.size > 1 else nan,
                "median": float(np.median(ok)) if ok.size else nan, "min": float(ok.min()) if ok.size else nan,
                "max": float(ok.max()) if ok.size else nan}
