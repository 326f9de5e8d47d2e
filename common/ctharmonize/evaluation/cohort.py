"""Cohort evaluation: per-scan emphysema, body-composition Dice and image similarity.

:func:`evaluate_cohort` computes one row per scan (see ``docs/evaluation.md`` for the columns)
and an example slice for the panel figure; :mod:`.summary` turns the rows into the paper-000
statistics; :func:`ctharmonize.evaluation.run.run_evaluation` writes everything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ctharmonize.errors import ConfigError, DimensionError
from ctharmonize.evaluation.pairing import Cohort, Scan
from ctharmonize.io.label_map import read_label_map
from ctharmonize.metrics.dice import dice
from ctharmonize.metrics.image_similarity import ncc, nrmse, psnr, ssim

logger = logging.getLogger(__name__)

__all__ = ["BODY_LABELS", "MASK_SOURCES", "MEASURES", "CohortEvaluation", "ScanCache", "evaluate_cohort",
           "example_slice"]

MASK_SOURCES = ("auto", "datalist", "original", "reference", "each")
MEASURES = ("laa_pct", "perc15_hu", "volume_ml", "mean_hu", "mass_g")
PAIRED_MEASURES = ("laa_pct", "perc15_hu", "mean_hu")  # compared with the paired reference kernel
BODY_LABELS = {"muscle": 5, "sat": 6, "vat": 7}
SIMILARITY: dict[str, Callable[..., float]] = {"psnr": psnr, "ssim": ssim, "nrmse": nrmse, "ncc": ncc}


@dataclass
class CohortEvaluation:
    """Per-scan rows (dicts of scalars/strings), the cohort, and the example slice for the panel."""

    rows: list[dict[str, Any]]
    cohort: Cohort
    threshold: float
    example: dict[str, Any] = field(default_factory=dict)


def _measures(hu: np.ndarray, lung: np.ndarray, spacing: Sequence[float], threshold: float, prefix: str) -> dict:
    from ctharmonize.metrics.emphysema import emphysema_measures

    m = emphysema_measures(hu, lung, spacing, threshold=threshold)
    row = {f"{prefix}{k}": float(m["both"][k]) for k in MEASURES}
    for side in ("right", "left"):
        row[f"{prefix}laa_pct_{side}"] = float(m[side]["laa_pct"])
    return row


class ScanCache:
    """Volumes and lung masks of some scans (one subject, or a validation set), each read/computed once."""

    def __init__(self, scans: Sequence[Scan], backend: str, mask_source: str):
        self.scans = {s.index: s for s in scans}
        self.backend = backend
        self.mask_source = mask_source
        self.volumes: dict[tuple[int, str], Any] = {}
        self.masks: dict[tuple[int, str], np.ndarray] = {}

    def volume(self, scan: Scan, which: str = "image"):
        key = (scan.index, which)
        if key not in self.volumes:
            from ctharmonize.io import read_volume

            self.volumes[key] = read_volume(getattr(scan, which))
        return self.volumes[key]

    def _segment(self, scan: Scan, which: str) -> np.ndarray:
        from ctharmonize.segmentation import segment_lungs

        key = (scan.index, which)
        if key not in self.masks:
            self.masks[key] = np.asarray(segment_lungs(self.volume(scan, which), backend=self.backend), dtype=np.uint8)
        return self.masks[key]

    def lung(self, scan: Scan, which: str = "image") -> tuple[np.ndarray, str]:
        """The lung mask for ``scan``'s original (``which="image"``) or harmonized image, and where it came from."""
        src = self.mask_source
        if which == "harmonized" and src == "each":
            return self._segment(scan, "harmonized"), "segmented harmonized"
        if src == "datalist" or (src == "auto" and scan.lung):
            if not scan.lung:
                raise ConfigError(scan.image, "mask_source='datalist' but the entry has no 'lung' mask")
            key = (scan.index, "lung")
            if key not in self.masks:
                self.masks[key] = read_label_map(scan.lung, allowed={0, 1, 2})
            return self.masks[key], "datalist"
        if src == "reference" and scan.paired_reference is not None and scan.paired_reference in self.scans:
            return self._segment(self.scans[scan.paired_reference], "image"), "segmented paired reference"
        if src not in MASK_SOURCES:
            raise ConfigError(None, f"mask_source must be one of {MASK_SOURCES}, got {src!r}")
        return self._segment(scan, "image"), "segmented original"


def _check_same_grid(a, b, path: str, what: str) -> None:
    if a.array.shape != b.array.shape:
        raise DimensionError(path, f"{what} has shape {b.array.shape}, expected {a.array.shape} (same grid)")


def _similarity(image: np.ndarray, reference: np.ndarray, prefix: str) -> dict[str, float]:
    return {f"{name}_{prefix}": fn(image, reference) for name, fn in SIMILARITY.items()}


def example_slice(lung: np.ndarray) -> int:
    """The slice nearest the middle among those with at least 90 % of the largest lung area."""
    per_slice = lung.reshape(lung.shape[0], -1).astype(bool).sum(axis=1)
    if not per_slice.any():
        return lung.shape[0] // 2
    candidates = np.flatnonzero(per_slice >= 0.9 * per_slice.max())
    return int(candidates[np.argmin(np.abs(candidates - (lung.shape[0] - 1) / 2))])


def evaluate_cohort(
    cohort: Cohort,
    backend: str = "threshold",
    mask_source: str = "auto",
    threshold: float = -950.0,
    body_composition: bool = True,
    similarity: bool = True,
    progress: bool = True,
) -> CohortEvaluation:
    """Compute one row per scan of ``cohort``.

    Args:
        cohort: from :func:`ctharmonize.evaluation.pairing.build_cohort`.
        backend: lung / body-composition segmentation backend (``ctharmonize.segmentation``).
        mask_source: lung mask used for emphysema: "auto" (the datalist ``lung`` if given, else
            segment the original), "datalist" (required), "original" (segment the original),
            "reference" (segment the paired soft-kernel reference of the same subject, else the
            original), "each" (segment every image, harmonized ones included). Except with "each",
            the harmonized image is measured with its original's mask (the multipath authors'
            practice: the mask is computed on one image and applied to the other).
        threshold: LAA threshold in HU (-950).
        body_composition: label muscle/SAT/VAT on original and harmonized images and score Dice
            (harmonized vs original: the hallucination measure).
        similarity: PSNR/SSIM/NRMSE/NCC (HU window [-1024, 3072]) against the paired reference.
        progress: tqdm progress bar over scans.
    """
    if mask_source not in MASK_SOURCES:
        raise ConfigError(None, f"mask_source must be one of {MASK_SOURCES}, got {mask_source!r}")
    rows: dict[int, dict[str, Any]] = {}
    example: dict[str, Any] = {}
    bar = tqdm(total=len(cohort.scans), desc="evaluate", unit="scan", disable=not progress)
    for scans in cohort.by_subject().values():
        cache = ScanCache(scans, backend, mask_source)
        for scan in scans:
            rows[scan.index] = _evaluate_scan(scan, cohort, cache, threshold, body_composition, similarity, example)
            bar.update(1)
    bar.close()
    ordered = [rows[s.index] for s in cohort.scans]
    for scan in cohort.scans:  # the paired reference's lung measures next to each paired scan
        if scan.paired_reference is not None:
            for key in PAIRED_MEASURES:
                ordered[scan.index][f"ref_{key}"] = ordered[scan.paired_reference][key]
    return CohortEvaluation(rows=ordered, cohort=cohort, threshold=threshold, example=example)


def _evaluate_scan(
    scan: Scan,
    cohort: Cohort,
    cache: ScanCache,
    threshold: float,
    body_composition: bool,
    similarity: bool,
    example: dict[str, Any],
) -> dict[str, Any]:
    ref_scan = cohort.scans[scan.paired_reference] if scan.paired_reference is not None else None
    row: dict[str, Any] = {
        "subject": scan.subject,
        "vendor": scan.vendor or "",
        "kernel": scan.kernel,
        "split": scan.split or "",
        "image": scan.image,
        "harmonized": scan.harmonized or "",
        "target": scan.target or "",
        "paired_reference": ref_scan.kernel if ref_scan else "",
    }
    volume = cache.volume(scan)
    lung, lung_from = cache.lung(scan)
    if lung.shape != volume.array.shape:
        raise DimensionError(scan.lung or scan.image, f"lung mask shape {lung.shape} != image shape {volume.array.shape}")
    row["mask_source"] = lung_from
    row["warning"] = ""
    if not lung.any():
        logger.warning("%s: empty lung mask (%s); emphysema measures set to NaN", scan.image, lung_from)
        row["warning"] = f"empty lung mask ({lung_from})"
        row.update({k: math.nan for k in (*MEASURES, "laa_pct_right", "laa_pct_left")})
    else:
        row.update(_measures(volume.array, lung, volume.spacing, threshold, ""))
    row.update({f"ref_{k}": math.nan for k in PAIRED_MEASURES})
    row.update({f"after_{k}": math.nan for k in (*MEASURES, "laa_pct_right", "laa_pct_left")})
    row.update({f"dice_{k}": math.nan for k in BODY_LABELS})
    for when in ("before", "after"):
        row.update({f"{k}_{when}": math.nan for k in SIMILARITY})

    harmonized = None
    if scan.harmonized:
        harmonized = cache.volume(scan, "harmonized")
        _check_same_grid(volume, harmonized, scan.harmonized, "harmonized image")
        h_lung, _ = cache.lung(scan, "harmonized")
        if h_lung.any():
            row.update(_measures(harmonized.array, h_lung, harmonized.spacing, threshold, "after_"))
        else:
            row["warning"] = "; ".join(filter(None, [row["warning"], "empty lung mask (harmonized)"]))
        if body_composition:
            from ctharmonize.segmentation import body_composition as label_body

            before = label_body(volume, backend=cache.backend, lung=lung)
            after = label_body(harmonized, backend=cache.backend, lung=h_lung)
            scores = dice(before, after, labels=list(BODY_LABELS.values()))
            row.update({f"dice_{name}": scores[code] for name, code in BODY_LABELS.items()})

    if similarity and ref_scan is not None:
        reference = cache.volume(ref_scan)
        try:
            _check_same_grid(reference, volume, scan.image, "image")
        except DimensionError:
            pass  # not pixel-aligned: no image similarity
        else:
            row.update(_similarity(volume.array, reference.array, "before"))
            if harmonized is not None and scan.target == ref_scan.kernel:
                row.update(_similarity(harmonized.array, reference.array, "after"))

    _maybe_example(scan, ref_scan, cache, volume, harmonized, lung, threshold, example)
    return row


def _maybe_example(scan, ref_scan, cache, volume, harmonized, lung, threshold, example: dict) -> None:
    """Keep one slice for the panel: prefer a harmonized scan, then a paired one, then any."""
    score = 2 if harmonized is not None else 1 if ref_scan is not None else 0
    if example and example["score"] >= score:
        return
    k = example_slice(lung)
    if harmonized is not None:
        other, other_title, short = harmonized.array[k], f"after: harmonized to {scan.target}", "after"
    elif ref_scan is not None:
        ref = cache.volume(ref_scan)
        if ref.array.shape != volume.array.shape:
            return
        other, other_title, short = ref.array[k], f"paired reference {ref_scan.kernel} (original)", ref_scan.kernel
    else:
        other, other_title, short = None, "", ""
    example.clear()
    example.update(
        score=score,
        subject=scan.subject,
        kernel=scan.kernel,
        slice=k,
        before=np.asarray(volume.array[k], dtype=np.float32),
        before_title=f"before: {scan.kernel} (original)",
        after=None if other is None else np.asarray(other, dtype=np.float32),
        after_title=other_title,
        after_short=short,
        lung=np.asarray(lung[k] > 0),
        threshold=threshold,
        spacing=volume.spacing,
    )

