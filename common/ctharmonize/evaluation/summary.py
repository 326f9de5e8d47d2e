"""Cohort statistics in paper-000 form from per-scan rows (LAA-950 in %, Dice in [0, 1]).

* ``paired[k->r]``: scans of kernel k vs the same subjects' kernel r. Bootstrap median RMSE of
  LAA-950 with 95 % CI before (original k vs r) and after (harmonized k vs original r), mean
  difference, paired Wilcoxon of the kernels' LAA before/after and of the absolute errors
  before vs after, Cohen's d, and image-similarity medians (Table 1 form); ``lung_measures``:
  mean difference and RMSE (HU) of Perc15 and mean lung density against the paired reference
  (a harmonizer can match LAA-950 while shifting lung density; these show it).
* ``unpaired[k]``: LAA-950 median (min, max) of kernel k before/after vs the reference
  kernel's distribution, Mann-Whitney U, KL divergence on shared bins, Cohen's d (Table 2 form).
* ``dice[k]``: muscle / SAT / VAT Dice (harmonized vs original) median (min, max) (Table 3 data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ctharmonize.metrics.bootstrap import bootstrap_rmse
from ctharmonize.metrics.effect_size import cohens_d, effect_size_category
from ctharmonize.metrics.kl_divergence import kl_divergence
from ctharmonize.metrics.significance import mann_whitney_u, paired_wilcoxon

__all__ = ["agreement", "distribution", "summarize"]


def _finite(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def distribution(values: Sequence[float]) -> dict[str, float | int]:
    """``{"n", "median", "min", "max"}`` of the finite values (NaN when empty)."""
    a = _finite(values)
    if a.size == 0:
        return {"n": 0, "median": math.nan, "min": math.nan, "max": math.nan}
    return {"n": int(a.size), "median": float(np.median(a)), "min": float(a.min()), "max": float(a.max())}


def _test(result) -> dict[str, float | int]:
    return {"statistic": result.statistic, "pvalue": result.pvalue, "n": result.n}


def _effect(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    d = cohens_d(x, y)
    return {"d": d, "category": effect_size_category(d)}


def _rmse(pred, ref, n_resamples: int, seed: int, ci: float) -> dict[str, float]:
    med, low, high = bootstrap_rmse(pred, ref, n_resamples=n_resamples, seed=seed, ci=ci)
    return {"rmse": med, "ci_low": low, "ci_high": high}


def agreement(values: np.ndarray, reference: np.ndarray) -> dict[str, float] | None:
    """``{"n", "mean_difference", "rmse"}`` of ``values - reference`` over the finite pairs (None if none)."""
    values = np.asarray(values, dtype=float)
    reference = np.asarray(reference, dtype=float)
    ok = np.isfinite(values) & np.isfinite(reference)
    if not ok.any():
        return None
    diff = values[ok] - reference[ok]
    return {"n": int(ok.sum()), "mean_difference": float(diff.mean()), "rmse": float(np.sqrt(np.mean(diff**2)))}


def _hu_agreement(grp, done, measure: str) -> dict[str, Any]:
    """Mean difference and RMSE (HU) of a lung measure against the paired reference, before and after."""
    ref = np.array([r.get(f"ref_{measure}", math.nan) for r in grp], float)
    out = {"before": agreement(np.array([r.get(measure, math.nan) for r in grp], float), ref), "after": None}
    if done:
        ref_d = np.array([r.get(f"ref_{measure}", math.nan) for r in done], float)
        out["after"] = agreement(np.array([r.get(f"after_{measure}", math.nan) for r in done], float), ref_d)
    return out


def _paired(rows, n_resamples: int, seed: int, ci: float) -> dict[str, Any]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["paired_reference"] and math.isfinite(r["ref_laa_pct"]):
            groups.setdefault(f"{r['kernel']}->{r['paired_reference']}", []).append(r)
    out: dict[str, Any] = {}
    for key, grp in sorted(groups.items()):
        laa = np.array([r["laa_pct"] for r in grp])
        ref = np.array([r["ref_laa_pct"] for r in grp])
        entry: dict[str, Any] = {
            "kernel": grp[0]["kernel"],
            "reference": grp[0]["paired_reference"],
            "n": len(grp),
            "before": {
                **_rmse(laa, ref, n_resamples, seed, ci),
                "mean_difference": float(np.mean(laa - ref)),
                "wilcoxon": _test(paired_wilcoxon(laa, ref)),
                "cohens_d": _effect(laa, ref),
                "similarity": {m: distribution([r[f"{m}_before"] for r in grp]) for m in ("psnr", "ssim", "nrmse", "ncc")},
            },
            "after": None,
            "wilcoxon_before_vs_after": None,
        }
        done = [r for r in grp if r["target"] == r["paired_reference"] and math.isfinite(r["after_laa_pct"])]
        if done:
            after = np.array([r["after_laa_pct"] for r in done])
            ref_d = np.array([r["ref_laa_pct"] for r in done])
            before_d = np.array([r["laa_pct"] for r in done])
            entry["after"] = {
                "n": len(done),
                **_rmse(after, ref_d, n_resamples, seed, ci),
                "mean_difference": float(np.mean(after - ref_d)),
                "wilcoxon": _test(paired_wilcoxon(after, ref_d)),
                "cohens_d": _effect(after, ref_d),
                "similarity": {m: distribution([r[f"{m}_after"] for r in done]) for m in ("psnr", "ssim", "nrmse", "ncc")},
            }
            entry["wilcoxon_before_vs_after"] = _test(paired_wilcoxon(np.abs(before_d - ref_d), np.abs(after - ref_d)))
        entry["lung_measures"] = {m: _hu_agreement(grp, done, m) for m in ("perc15_hu", "mean_hu")}
        out[key] = entry
    return out


def _unpaired(rows, reference_kernel: str, bins: int | str) -> dict[str, Any]:
    ref = [r["laa_pct"] for r in rows if r["kernel"] == reference_kernel]
    out: dict[str, Any] = {"reference": {"kernel": reference_kernel, **distribution(ref)}, "kernels": {}}
    kernels = sorted({r["kernel"] for r in rows} - {reference_kernel})
    for k in kernels:
        before = [r["laa_pct"] for r in rows if r["kernel"] == k]
        after = [r["after_laa_pct"] for r in rows if r["kernel"] == k and r["target"] == reference_kernel]
        entry = {}
        for when, values in (("before", before), ("after", after)):
            if not _finite(values).size:
                entry[when] = None
                continue
            entry[when] = {
                **distribution(values),
                "mann_whitney_u": _test(mann_whitney_u(values, ref)),
                "kl_divergence": kl_divergence(values, ref, bins=bins) if ref else math.nan,
                "cohens_d": _effect(values, ref),
            }
        out["kernels"][k] = entry
    return out


def _dice(rows) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in sorted({r["kernel"] for r in rows}):
        grp = [r for r in rows if r["kernel"] == k and r["harmonized"]]
        if grp:
            out[k] = {
                "target": sorted({r["target"] for r in grp}),
                **{t: distribution([r[f"dice_{t}"] for r in grp]) for t in ("muscle", "sat", "vat")},
            }
    return out


def summarize(
    rows: Sequence[dict[str, Any]],
    reference_kernel: str,
    threshold: float = -950.0,
    n_resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    bins: int | str = 10,
) -> dict[str, Any]:
    """The ``summary.json`` content (see the module docstring) from :func:`evaluate_cohort` rows."""
    return {
        "reference_kernel": reference_kernel,
        "threshold_hu": threshold,
        "n_scans": len(rows),
        "n_harmonized": sum(1 for r in rows if r["harmonized"]),
        "kernels": {k: sum(1 for r in rows if r["kernel"] == k) for k in sorted({r["kernel"] for r in rows})},
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "ci": ci},
        "kl_bins": bins,
        "paired": _paired(rows, n_resamples, seed, ci),
        "unpaired": _unpaired(rows, reference_kernel, bins),
        "dice": _dice(rows),
        "warnings": [f"{r['subject']} {r['kernel']}: {r['warning']}" for r in rows if r.get("warning")],
    }
