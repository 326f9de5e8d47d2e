"""The ground truth of a simulated datalist as entries of their own, kernel ``"ground_truth"``.

A simulated entry names its subject's noise-free, blur-free ground-truth volume under ``ground_truth``
(:data:`~ctharmonize.domains.reference.TRUTH_DOMAIN`); every rendition of a subject names the same one. Code
that pairs scans by (subject, kernel), e.g. checkpoint selection and the cohort evaluation, reaches the truth as
one more "kernel" with :func:`truth_entries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ctharmonize.domains.reference import TRUTH_DOMAIN

__all__ = ["truth_entries", "with_truth_entries"]

_KEPT = ("subject", "pair_id", "split", "vendor", "lung", "labels")


def truth_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per distinct ``ground_truth`` path of ``entries`` (first entry naming it, in order):
    ``image`` = that path, ``kernel`` = ``"ground_truth"``, ``ground_truth`` = the same path, and the first
    entry's ``subject``, ``pair_id``, ``split``, ``vendor``, ``lung`` and ``labels``."""
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        path = e.get(TRUTH_DOMAIN)
        if path and str(path) not in out:
            out[str(path)] = {"image": path, "kernel": TRUTH_DOMAIN, TRUTH_DOMAIN: path,
                              **{k: e[k] for k in _KEPT if e.get(k) is not None}}
    return list(out.values())


def with_truth_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` (copies) followed by their :func:`truth_entries` (none twice: entries of kernel
    ``"ground_truth"`` already there are kept and not added again)."""
    entries = [dict(e) for e in entries]
    have = {str(e["image"]) for e in entries if e.get("kernel") == TRUTH_DOMAIN}
    return entries + [t for t in truth_entries(entries) if str(t["image"]) not in have]
