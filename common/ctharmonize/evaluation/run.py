"""The cohort evaluation workflow: datalist -> per_scan.csv, summary.json, PNG plots, report.md."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ctharmonize.evaluation.cohort import evaluate_cohort
from ctharmonize.evaluation.pairing import DEFAULT_REFERENCE_KERNEL, build_cohort
from ctharmonize.evaluation.plots import bland_altman_plot, dice_plot, example_panel, laa_boxplot
from ctharmonize.evaluation.report import write_report
from ctharmonize.evaluation.summary import summarize
from ctharmonize.io.atomic import atomic_path, check_writable

__all__ = ["jsonable", "run_evaluation", "write_csv", "write_json"]


def jsonable(value: Any) -> Any:
    """NaN/inf -> None (strict JSON), numpy scalars and arrays -> Python."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: Any, path: str | os.PathLike, overwrite: bool = False, record: bool = False) -> Path:
    """Write strict JSON (NaN/inf as null) atomically; ``record``: a user-facing output (see ``atomic_path``)."""
    with atomic_path(path, overwrite=overwrite, record=record) as tmp:
        tmp.write_text(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return Path(path)


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write rows (same keys) as CSV atomically; NaN written as an empty cell."""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()})
    return Path(path)


def run_evaluation(
    datalist: str | os.PathLike | list[dict],
    out: str | os.PathLike,
    reference_kernel: str = DEFAULT_REFERENCE_KERNEL,
    paired_references: Mapping[str, str] | None = None,
    backend: str = "threshold",
    mask_source: str = "auto",
    threshold: float = -950.0,
    split: str | None = None,
    body_composition: bool = True,
    similarity: bool = True,
    n_resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    kl_bins: int | str = 10,
    html: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a cohort and write the report folder ``out`` (atomically, as a whole).

    Args: see :func:`ctharmonize.evaluation.cohort.evaluate_cohort` and
    :func:`ctharmonize.evaluation.summary.summarize`; ``datalist`` is a datalist JSON path (or
    already-loaded entries), ``split`` keeps only entries of that split.

    Returns:
        The summary dict (also written to ``summary.json``).
    """
    check_writable(out, overwrite)
    from ctharmonize.data import datalist_entries

    entries, source = datalist_entries(datalist, split)
    cohort = build_cohort(entries, reference_kernel, paired_references, source=source)
    result = evaluate_cohort(cohort, backend=backend, mask_source=mask_source, threshold=threshold,
                             body_composition=body_composition, similarity=similarity, progress=progress)
    summary = summarize(result.rows, reference_kernel, threshold, n_resamples=n_resamples, seed=seed, ci=ci, bins=kl_bins)
    summary["settings"] = {"datalist": None if source is None else str(source), "backend": backend,
                           "mask_source": mask_source, "split": split,
                           "paired_references": cohort.paired_references}
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_csv(result.rows, tmp / "per_scan.csv")
        write_json(summary, tmp / "summary.json")
        figures = {
            f"Bland-Altman of LAA{threshold:g} against the paired reference kernel": "bland_altman_laa.png",
            f"LAA{threshold:g} per kernel before and after harmonization": "laa_boxplot.png",
        }
        bland_altman_plot(result.rows, tmp / figures[next(iter(figures))])
        laa_boxplot(result.rows, tmp / "laa_boxplot.png", reference_kernel)
        if cohort.has_harmonized and body_composition:
            figures["Dice of skeletal muscle and SAT, harmonized vs original"] = "dice_muscle_sat.png"
            dice_plot(result.rows, tmp / "dice_muscle_sat.png")
        if result.example:
            figures["Example slice: before, after, difference and emphysema maps (lung window)"] = "example_panel.png"
            example_panel(result.example, tmp / "example_panel.png")
        write_report(summary, figures, tmp, html_report=html)
    return summary
