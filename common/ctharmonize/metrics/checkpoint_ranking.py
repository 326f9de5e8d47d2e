"""Rank checkpoints by a weighted sum of per-metric ranks (paper 000 section 3.2, eq. 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.stats import rankdata

from ctharmonize.errors import ConfigError

__all__ = ["DEFAULT_METRIC_WEIGHTS", "rank_checkpoints"]

# Paper 000 eq. 1: 0.5 MSE(B50f->B30f) + 0.25 KL(BONE->B30f) + 0.25 KL(STANDARD->B30f)
DEFAULT_METRIC_WEIGHTS: dict[str, float] = {"mse_b50f_b30f": 0.5, "kl_bone_b30f": 0.25, "kl_standard_b30f": 0.25}


def rank_checkpoints(
    table: Mapping[Any, Mapping[str, float]],
    weights: Mapping[str, float] | None = None,
    limits: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Order checkpoints (epochs) best first by eq. 1 of paper 000.

    Each weighted metric is ranked across the epochs (1 = lowest value = best; ties, values equal
    to 9 significant digits, get the average rank; NaN/missing values rank after every finite value, tied among themselves);
    an epoch's ``weighted_rank`` is ``sum_m weights[m] * rank_m``; the smallest wins.

    Args:
        table: ``{epoch: {metric: value}}``; metrics not in ``weights`` are carried along unranked.
        weights: ``{metric: weight}``; default :data:`DEFAULT_METRIC_WEIGHTS`.
        limits: ``{metric: largest acceptable value}`` (a requirement, not a preference): an epoch
            over any limit (or missing a limited metric) ranks after every epoch within all limits,
            whatever its weighted rank. Ranks are still computed over all epochs.

    Returns:
        One dict per epoch, best first (within limits first, then by weighted rank, ties broken by
        the earlier epoch): ``{"epoch", "rank"`` (1-based overall position; tied weighted ranks with
        the same feasibility share the smaller rank)``, "weighted_rank", "feasible",
        "ranks": {metric: rank}, "metrics": {metric: value}}``.
    """
    weights = dict(DEFAULT_METRIC_WEIGHTS if weights is None else weights)
    limits = dict(limits or {})
    if not weights:
        raise ConfigError(None, "rank_checkpoints: no metric weights given")
    epochs = list(table.keys())
    if not epochs:
        return []
    ranks: dict[str, np.ndarray] = {}
    for metric in weights:
        values = np.array([float(table[e].get(metric, np.nan)) for e in epochs])
        if np.all(np.isnan(values)):
            raise ConfigError(None, f"rank_checkpoints: metric {metric!r} is missing for every checkpoint")
        # values equal to 9 significant digits tie: summation-order noise (e.g. a saturated KL of
        # 22.332703727247804 vs ...807) must not decide a rank
        finite = np.array([float(f"{v:.9g}") for v in np.where(np.isnan(values), np.inf, values)])
        ranks[metric] = rankdata(finite, method="average")
    weighted = sum(float(w) * ranks[m] for m, w in weights.items())
    feasible = [all(float(table[e].get(m, np.nan)) <= float(v) for m, v in limits.items()) for e in epochs]
    # (infeasible, weighted) as one sortable number: feasible epochs all come first
    key = np.asarray(weighted, dtype=float) + np.where(feasible, 0.0, np.max(weighted) - np.min(weighted) + 1.0)
    overall = rankdata(key, method="min")
    rows = [
        {
            "epoch": e,
            "rank": int(overall[i]),
            "weighted_rank": float(weighted[i]),
            "feasible": bool(feasible[i]),
            "ranks": {m: float(ranks[m][i]) for m in weights},
            "metrics": {k: float(v) for k, v in table[e].items()},
        }
        for i, e in enumerate(epochs)
    ]
    order = sorted(range(len(epochs)), key=lambda i: (not feasible[i], weighted[i], _sort_key(epochs[i])))
    return [rows[i] for i in order]


def _sort_key(epoch: Any) -> tuple:
    return (0, float(epoch), "") if isinstance(epoch, int | float | np.integer) else (1, 0.0, str(epoch))
