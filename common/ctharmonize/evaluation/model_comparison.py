"""Compare harmonization models on per-scan results (paper 000 Table 3 form).

Each model's cohort evaluation writes ``per_scan.csv`` with one row per scan, including the
muscle / SAT Dice between its harmonized image and the original (values in [0, 1]).
Cohen's d (pooled SD) between a reference model (e.g. "with tissue guidance") and every
other model quantifies how much more anatomy the other model hallucinates: positive d
means the reference model has the higher mean Dice.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ctharmonize.errors import InputError
from ctharmonize.metrics.effect_size import cohens_d, effect_size_category

__all__ = ["read_per_scan", "compare_models"]


def read_per_scan(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``per_scan.csv``; numeric cells become floats (empty/NaN → NaN)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise InputError(path, f"cannot read per-scan CSV: {err.strerror or err}") from err
    if not rows:
        raise InputError(path, "per-scan CSV has no rows")
    out = []
    for row in rows:
        parsed: dict[str, Any] = {}
        for key, value in row.items():
            try:
                parsed[key] = float(value) if value not in ("", None) else math.nan
            except ValueError:
                parsed[key] = value
        out.append(parsed)
    return out


def _values(rows: Sequence[Mapping[str, Any]], kernel: str, metric: str) -> list[float]:
    vals = [float(r[metric]) for r in rows if r.get("kernel") == kernel and metric in r]
    return [v for v in vals if math.isfinite(v)]


def compare_models(
    per_scan: Mapping[str, str | os.PathLike | Sequence[Mapping[str, Any]]],
    reference_model: str,
    kernels: Sequence[str] = ("ge_bone", "ge_standard"),
    metrics: Sequence[str] = ("dice_muscle", "dice_sat"),
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Cohen's d of ``reference_model`` vs each other model, per kernel and metric.

    Args:
        per_scan: model name → ``per_scan.csv`` path (or already-read rows).
        reference_model: the model in the first group of Cohen's d (paper: "Proposed w/ guide").
        kernels: source kernels to compare (rows are matched on the ``kernel`` column).
        metrics: per-scan columns, e.g. ``dice_muscle`` and ``dice_sat``.

    Returns:
        ``{other_model: {kernel: {metric: {"d", "category", "n_reference", "n_other"}}}}``.
    """
    if reference_model not in per_scan:
        raise InputError(None, f"reference model {reference_model!r} not among {sorted(per_scan)}")
    rows = {
        name: read_per_scan(src) if isinstance(src, str | os.PathLike) else list(src) for name, src in per_scan.items()
    }
    table: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for model, model_rows in rows.items():
        if model == reference_model:
            continue
        for kernel in kernels:
            for metric in metrics:
                ref = _values(rows[reference_model], kernel, metric)
                other = _values(model_rows, kernel, metric)
                d = cohens_d(ref, other)
                table.setdefault(model, {}).setdefault(kernel, {})[metric] = {
                    "d": d,
                    "category": effect_size_category(d),
                    "n_reference": len(ref),
                    "n_other": len(other),
                }
    return table
