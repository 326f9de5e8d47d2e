"""KL divergence between two sample distributions on SHARED histogram bins."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["kl_divergence"]


def kl_divergence(
    p_samples: Sequence[float] | np.ndarray,
    q_samples: Sequence[float] | np.ndarray,
    bins: int | str | Sequence[float] = 10,
    range: tuple[float, float] | None = None,  # noqa: A002 - mirrors numpy.histogram
    eps: float = 1e-10,
) -> float:
    """``KL(P || Q) = sum_i p_i log(p_i / q_i)`` (nats) between histograms of two samples.

    Both histograms use the SAME bin edges, computed by ``numpy.histogram_bin_edges`` on the
    union of both samples (or over ``range`` when given; ``bins`` may also be explicit edges),
    so the value is comparable across checkpoints. ``eps`` is added to every bin probability and
    each histogram is renormalized, so empty bins never give an infinite KL. The authors' code
    binned each sample separately and had no epsilon; this does not repeat that. Values keep
    their unit (e.g. LAA-950 %); NaNs are dropped; an empty sample -> NaN.
    """
    p = np.asarray(p_samples, dtype=float).ravel()
    q = np.asarray(q_samples, dtype=float).ravel()
    p = p[np.isfinite(p)]
    q = q[np.isfinite(q)]
    if p.size == 0 or q.size == 0:
        return float("nan")
    union = np.concatenate([p, q])
    if range is None:
        lo, hi = float(union.min()), float(union.max())
        if lo == hi:  # all values equal: one bin around them
            lo, hi = lo - 0.5, hi + 0.5
        range = (lo, hi)  # noqa: A001
    edges = np.histogram_bin_edges(union, bins=bins, range=range)
    hp = np.histogram(p, bins=edges)[0].astype(float)
    hq = np.histogram(q, bins=edges)[0].astype(float)
    hp = hp / hp.sum() if hp.sum() > 0 else np.full_like(hp, 1.0 / hp.size)
    hq = hq / hq.sum() if hq.sum() > 0 else np.full_like(hq, 1.0 / hq.size)
    hp = (hp + eps) / (hp + eps).sum()
    hq = (hq + eps) / (hq + eps).sum()
    return float(np.sum(hp * np.log(hp / hq)))
