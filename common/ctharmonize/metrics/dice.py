"""Dice similarity coefficient per label of two label maps."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["dice"]


def dice(a: np.ndarray, b: np.ndarray, labels: Iterable[int] | None = None) -> dict[int, float]:
    """Dice ``2|A∩B| / (|A| + |B|)`` for each label of two integer label maps of the same shape.

    Args:
        a, b: label maps (any shape, e.g. (Z, Y, X)); 0 is background.
        labels: labels to score; default: every non-zero label present in either map.

    Returns:
        ``{label: dice}``. A label absent from BOTH maps gives NaN (undefined: there is nothing
        to agree on, and 1.0 would inflate averages); aggregate with ``np.nanmedian``.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"dice: label maps differ in shape {a.shape} vs {b.shape}")
    if labels is None:
        labels = sorted((set(np.unique(a).tolist()) | set(np.unique(b).tolist())) - {0})
    out: dict[int, float] = {}
    for label in labels:
        in_a = a == label
        in_b = b == label
        total = int(in_a.sum()) + int(in_b.sum())
        out[int(label)] = float("nan") if total == 0 else 2.0 * int(np.logical_and(in_a, in_b).sum()) / total
    return out
