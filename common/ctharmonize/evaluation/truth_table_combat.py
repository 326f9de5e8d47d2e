"""ComBat feature harmonization of per-slice [LAA-950, Perc15] towards the ground truth (paper 001's comparison).

Paper 001 compares its image harmonizer with ComBat (Fortin et al., ``neuroCombat``) "informed with the reference
batch rendition" on [LAA-950, Perc15]. On a simulated set the reference is the truth itself, so
:func:`combat_to_truth` gives the ground-truth slices a batch of their own, :data:`TRUTH_BATCH`, used as
``ref_batch``; every other batch (one per rendition × dose, or per kernel without those fields) is moved onto its
location and scale. ``neuroCombat`` (extra ``combat``) is optional: :func:`combat_available` says whether it is
installed.

neuroCombat 0.2.12 (its latest release) still calls ``np.int``, which NumPy ≥ 1.24 removed; the call runs with that
alias restored for its duration only (:func:`_numpy_int_alias`), and with neuroCombat's progress prints captured.
Its defaults are used: parametric empirical Bayes, mean and scale adjusted, no covariates. With two features its
empirical-Bayes priors are estimated from two values per batch (neuroCombat's RuntimeWarnings there are silenced).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["COMBAT_FEATURES", "TRUTH_BATCH", "combat_available", "combat_to_truth", "run_combat"]

#: the ground-truth slices' batch name, ComBat's ``ref_batch``
TRUTH_BATCH = "ground_truth"
#: the per-slice features ComBat adjusts (slice-row keys), as paper 001
COMBAT_FEATURES = ("laa950_pct", "perc15_hu")


def combat_available() -> bool:
    """Whether ``neuroCombat`` (and the pandas it imports) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("neuroCombat", "pandas"))


@contextlib.contextmanager
def _numpy_int_alias() -> Iterator[None]:
    """``np.int`` = ``int`` while neuroCombat runs (it calls ``np.int(...)`` with a ``ref_batch``), then removed."""
    added = "int" not in np.__dict__
    if added:
        np.int = int  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if added:
            del np.int  # type: ignore[attr-defined]


def run_combat(data: np.ndarray, batches: Sequence[str], ref_batch: str) -> np.ndarray:
    """``neuroCombat(dat=data, covars=DataFrame({"batch": batches}), batch_col="batch", ref_batch=ref_batch)["data"]``:
    the adjusted (features, samples) array (the reference batch's columns unchanged)."""
    import pandas as pd
    from neuroCombat import neuroCombat

    covars = pd.DataFrame({"batch": [str(b) for b in batches]})
    with _numpy_int_alias(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
            np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # its EB priors divide by a zero variance on tiny sets
        result = neuroCombat(dat=np.asarray(data, dtype=np.float64), covars=covars, batch_col="batch",
                             ref_batch=ref_batch)
    return np.asarray(result["data"], dtype=np.float64)


def combat_to_truth(rows: Sequence[Mapping[str, Any]], truth: Mapping[Any, Mapping[str, float]],
                    batch_key: str = "rendition_dose") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """ComBat rows from the unharmonized slice rows.

    Args:
        rows: the "none" slice rows (:mod:`ctharmonize.evaluation.truth_table`), with ``batch_key``, the
            :data:`COMBAT_FEATURES` and their ground-truth values ``gt_<feature>``; rows with a NaN feature are
            left out.
        truth: (ground-truth path, slice) → {feature: value} of every ground-truth slice: the reference batch.
        batch_key: the row key naming a row's batch.

    Returns:
        (rows, info): one row per adjusted slice (a copy of its input row with ``method`` "combat", the adjusted
        features, their ``abs_d...`` against the truth, and NaN image metrics and lung mass); ``info`` the batches,
        their sizes and a ``status`` ("ok" or why ComBat was skipped, then with no rows).
    """
    feats = list(COMBAT_FEATURES)

    def finite(values: Mapping[str, Any]) -> bool:
        return all(isinstance(values.get(f), float | int) and math.isfinite(values[f]) for f in feats)

    samples = [r for r in rows if finite(r)]
    refs = [v for v in truth.values() if finite(v)]
    sizes: dict[str, int] = {TRUTH_BATCH: len(refs)}
    for r in samples:
        sizes[str(r[batch_key])] = sizes.get(str(r[batch_key]), 0) + 1
    info: dict[str, Any] = {"features": feats, "ref_batch": TRUTH_BATCH, "batch_key": batch_key,
                            "batch_sizes": sizes, "left_out_batches": [], "status": "ok"}
    small = sorted(b for b, n in sizes.items() if n < 2 and b != TRUTH_BATCH)
    if small:  # neuroCombat's per-batch variance (ddof 1) needs two samples
        info["left_out_batches"] = small
        samples = [r for r in samples if str(r[batch_key]) not in small]
    if sizes[TRUTH_BATCH] < 2 or not samples:
        info["status"] = ("skipped: fewer than 2 ground-truth slices with lung" if sizes[TRUTH_BATCH] < 2 else
                          "skipped: no batch with 2 or more slices with lung")
        return [], info
    data = np.array([[float(s[f]) for s in samples] + [float(v[f]) for v in refs] for f in feats])
    batches = [str(s[batch_key]) for s in samples] + [TRUTH_BATCH] * len(refs)
    adjusted = run_combat(data, batches, TRUTH_BATCH)
    out = []
    for k, row in enumerate(samples):
        new = {**row, "method": "combat"}
        for key in ("nrmse_pct", "ssim_pct", "psnr_db", "mass_g", "abs_dmass_g"):
            new[key] = math.nan
        for i, f in enumerate(feats):
            new[f] = float(adjusted[i, k])
        new["abs_dlaa950_pct"] = abs(new["laa950_pct"] - float(row["gt_laa950_pct"]))
        new["abs_dperc15_hu"] = abs(new["perc15_hu"] - float(row["gt_perc15_hu"]))
        out.append(new)
    return out, info
