"""``ctharmonize benchmark``: harmonize one test set with every method and rank them in ONE leaderboard.

Methods: "none" (the unharmonized images), the classical baseline bundle and each given bundle, each
run through its ``harmonizer`` item. Paths (:data:`PATHS`): paired within a vendor (a sharp kernel to
the same subject's soft kernel), unpaired cross-vendor (GE kernels to the Siemens B30f distribution) and
truth (any kernel to the subject's noise-free, blur-free ground truth, :data:`TRUTH_DOMAIN`; paper 001).
A method whose ``harmonizer.domains`` lack a path's source or target (or whose ``targets`` lack its target,
:func:`~ctharmonize.inference.harmonizer.target_domains`) gets a "not supported" row. Every measure comes
from the cohort evaluation (:func:`evaluate_cohort` + :func:`summarize`: LAA-950, Perc15, MLD, SSIM/PSNR,
Dice) or :mod:`.benchmark_measures` (noise, NPS, ground truth, MTF50 and d′) and :mod:`.benchmark_distribution`
(FID / KID in the CT feature space, radiomic alignment); columns in :mod:`.benchmark_table`, definitions in
``docs/benchmark.md``.

Memory stays that of one subject: harmonized volumes go to a scratch folder inside the (atomic) output
folder, are measured subject by subject and removed after each method.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctharmonize.domains.reference import DEFAULT_REFERENCE_KERNEL, TRUTH_DOMAIN
from ctharmonize.errors import ConfigError, DatalistError
from ctharmonize.evaluation.benchmark_distribution import (
    DISTRIBUTION_COLUMNS,
    DISTRIBUTION_SLICES,
    SliceEmbedder,
    aligned_percent,
    distribution_columns,
)
from ctharmonize.evaluation.benchmark_measures import (
    FLAT_TOLERANCE_HU,
    NOISE_EROSION_MM,
    NOISE_EROSION_PX,
    NOISE_LABEL,
    NPS_ROI_SIZES,
    OBSERVER,
    ScanTruth,
    image_measures,
    physics_measures,
)
from ctharmonize.evaluation.benchmark_plots import bars_plot, method_panel
from ctharmonize.evaluation.benchmark_radiomics import (
    RADIOMICS_COLUMNS,
    PairedRadiomics,
    radiomics_ccc_columns,
)
from ctharmonize.evaluation.benchmark_table import (
    COLUMNS,
    beats_baseline,
    beats_markdown,
    leaderboard_markdown,
)
from ctharmonize.evaluation.cohort import BODY_LABELS, ScanCache, evaluate_cohort, example_slice
from ctharmonize.evaluation.pairing import DEFAULT_PAIRED_REFERENCES, Cohort, Scan, build_cohort
from ctharmonize.evaluation.summary import agreement, distribution, summarize
from ctharmonize.inference.harmonizer import Harmonizer, target_domains
from ctharmonize.metrics.dice import dice

__all__ = ["BASELINE_BUNDLE", "METRIC_KEYS", "PATHS", "BenchmarkMethod", "BenchmarkPath", "InputLabels",
           "TimedHarmonizer", "default_baseline", "plan_methods", "run_benchmark"]

BASELINE_BUNDLE = "kernel_normalization_ct_harmonization"
THRESHOLD_HU = -950.0
METRIC_KEYS = ("laa950_rmse_pp", "laa950_rmse_ci_low", "laa950_rmse_ci_high", "perc15_diff_hu", "mld_diff_hu",
               "noise_sd_ratio", "nps_peak_lpcm", "nps_peak_ref_lpcm", "mtf50_lpcm", "mtf50_ref_lpcm", "dprime_npwe",
               "dprime_npwe_ref", "ssim_soft", "psnr_soft_db", "ssim_gt", "psnr_gt_db", "laa950_gt_rmse_pp",
               "perc15_gt_diff_hu", "mld_gt_diff_hu", "dice_muscle", "dice_sat", "laa950_median_pct",
               "laa950_ref_median_pct", "mwu_p", *RADIOMICS_COLUMNS, *DISTRIBUTION_COLUMNS, "slices_per_s")
KINDS = ("paired", "unpaired", "truth")


@dataclass(frozen=True)
class BenchmarkPath:
    """A harmonization path: ``source`` kernel to ``target``; ``kind`` "paired" (same subject's ``target``
    image is the reference), "unpaired" (the ``target`` images of all subjects are) or "truth" (``target`` is
    :data:`TRUTH_DOMAIN`: the same subject's ground-truth volume, ``entry["ground_truth"]``, is the reference)."""

    source: str
    target: str
    kind: str

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


PATHS: tuple[BenchmarkPath, ...] = (
    BenchmarkPath("siemens_b50f", "siemens_b30f", "paired"),
    BenchmarkPath("ge_bone", "ge_standard", "paired"),
    BenchmarkPath("ge_bone", DEFAULT_REFERENCE_KERNEL, "unpaired"),
    BenchmarkPath("ge_standard", DEFAULT_REFERENCE_KERNEL, "unpaired"),
    *(BenchmarkPath(k, TRUTH_DOMAIN, "truth") for k in ("siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard")),
)


@dataclass(frozen=True)
class BenchmarkMethod:
    """A leaderboard method: ``role`` "none" (identity), "baseline" or "bundle"; ``bundle`` its folder."""

    name: str
    role: str
    bundle: str | None = None


class TimedHarmonizer:
    """Wraps a harmonizer; adds up the wall time (s) and slices of its calls per (source, target). Other
    attributes (``domains``, its ``spacing_policy``, ...) are the wrapped harmonizer's."""

    def __init__(self, harmonizer: Harmonizer) -> None:
        self.harmonizer = harmonizer
        self.seconds: dict[tuple[str, str], float] = {}
        self.slices: dict[tuple[str, str], int] = {}

    def __getattr__(self, name: str) -> Any:
        if name == "harmonizer":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.harmonizer, name)

    def __call__(self, volume_hu: np.ndarray, source: str, target: str,
                 fov_mask: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
        start = time.perf_counter()
        out = self.harmonizer(volume_hu, source, target, fov_mask=fov_mask, **kwargs)
        key = (source, target)
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start
        self.slices[key] = self.slices.get(key, 0) + int(np.shape(volume_hu)[0])
        return out

    def slices_per_s(self, source: str, target: str) -> float:
        """Slices per second of wall time inside the harmonizer calls of this path (NaN if none)."""
        seconds = self.seconds.get((source, target), 0.0)
        return self.slices[(source, target)] / seconds if seconds > 0 else float("nan")


def default_baseline() -> Path:
    """The shipped classical baseline bundle, ``bundles/kernel_normalization_ct_harmonization``."""
    from ctharmonize.bundle.trust import shipped_bundles_dir

    return shipped_bundles_dir() / BASELINE_BUNDLE


def plan_methods(bundles: Sequence[str], baseline: str | None = None, trust: bool = False) -> list[BenchmarkMethod]:
    """"none", the baseline (``baseline``; None: :func:`default_baseline`; "": no baseline) unless already in
    ``bundles``, then ``bundles``. Every bundle config is read (and its trust checked) now: a bad folder is
    a one-line :class:`ConfigError` naming it before any work."""
    from ctharmonize.inference.bundle_harmonizer import bundle_model_name, read_bundle_config

    base = None if baseline == "" else os.fspath(baseline if baseline is not None else default_baseline())
    folders = [os.fspath(b) for b in bundles]
    same = [os.path.realpath(b) for b in folders]
    if base is not None and os.path.realpath(base) not in same:
        folders.insert(0, base)
    methods = [BenchmarkMethod("none", "none")]
    for folder in folders:
        name = bundle_model_name(read_bundle_config(folder, trust=trust))
        while name in {m.name for m in methods}:
            name = f"{name} ({Path(folder).name})" if Path(folder).name not in name else f"{name}'"
        role = "baseline" if base is not None and os.path.realpath(folder) == os.path.realpath(base) else "bundle"
        methods.append(BenchmarkMethod(name, role, folder))
    return sorted(methods, key=lambda m: ("none", "baseline", "bundle").index(m.role))


def _empty_row(method: BenchmarkMethod, path: BenchmarkPath, status: str) -> dict[str, Any]:
    return {"method": method.name, "role": method.role, "bundle": method.bundle or "", "path": path.name,
            "kind": path.kind, "source": path.source, "target": path.target, "status": status, "n": 0,
            **{k: float("nan") for k in METRIC_KEYS}}


def _median(values: Sequence[float]) -> float:
    return float(distribution(values)["median"])


def _rmse(values: Sequence[float], reference: Sequence[float]) -> float:
    result = agreement(np.asarray(values, float), np.asarray(reference, float))
    return float("nan") if result is None else float(result["rmse"])


def _get(doc: Mapping[str, Any] | None, *keys: str) -> float:
    for key in keys:
        if not isinstance(doc, Mapping):
            return float("nan")
        doc = doc.get(key)
    return float("nan") if doc is None else float(doc)


def _path_row(method: BenchmarkMethod, path: BenchmarkPath, rows: list[dict], summary: dict, extras: dict,
              refs: dict, timer: TimedHarmonizer | None, seed: int = 0) -> dict[str, Any]:
    """The leaderboard row of one method x path from the cohort rows/summary and the per-scan extras
    (``refs``: the target-kernel scans' measures by (subject, kernel); ``seed``: of the KID subsets)."""
    row = _empty_row(method, path, "ok")
    sel = [i for i, r in enumerate(rows) if r["kernel"] == path.source and r["target"] == path.target and r["harmonized"]
           and (path.kind == "unpaired" or r["paired_reference"] == path.target)]
    row["n"] = len(sel)
    if not sel:
        row["status"] = "no scans"
        return row
    mine = [extras.get(i, {}) for i in sel]
    after = [rows[i]["after_laa_pct"] for i in sel]
    if path.kind == "paired":
        block = summary["paired"].get(path.name) or {}
        soft = [refs.get((rows[i]["subject"], path.target), {}) for i in sel]
        row["laa950_rmse_pp"] = _rmse(after, [rows[i]["ref_laa_pct"] for i in sel])
        row["laa950_rmse_ci_low"] = _get(block, "after", "ci_low")
        row["laa950_rmse_ci_high"] = _get(block, "after", "ci_high")
        row["perc15_diff_hu"] = _get(block, "lung_measures", "perc15_hu", "after", "mean_difference")
        row["mld_diff_hu"] = _get(block, "lung_measures", "mean_hu", "after", "mean_difference")
        row["ssim_soft"] = _get(block, "after", "similarity", "ssim", "median")
        row["psnr_soft_db"] = _get(block, "after", "similarity", "psnr", "median")
        ref_sd = [s.get("noise_sd_hu", np.nan) for s in soft]
        row["nps_peak_ref_lpcm"] = _median([s.get("nps_peak_lpcm", np.nan) for s in soft])
        row["mtf50_ref_lpcm"] = _median([s.get("mtf50_lpcm", np.nan) for s in soft])
        row["dprime_npwe_ref"] = _median([s.get("dprime_npwe", np.nan) for s in soft])
        if all("radiomics" in m for m in mine):
            row.update(radiomics_ccc_columns([m["radiomics"] for m in mine], [m["radiomics_soft"] for m in mine]))
            if all("embedding" in m for m in mine):  # the distribution columns are on
                row["radiomics_aligned_pct"] = aligned_percent([m["radiomics"] for m in mine],
                                                               [m["radiomics_soft"] for m in mine])
        target_embeddings = [s.get("embedding") for s in soft]
    else:
        block = (summary["unpaired"]["kernels"].get(path.source) or {}).get("after")
        target = [m for (_, kernel), m in refs.items() if kernel == path.target]
        ref_sd = [_median([m.get("noise_sd_hu", np.nan) for m in target])] * len(sel)
        row["nps_peak_ref_lpcm"] = _median([m.get("nps_peak_lpcm", np.nan) for m in target])
        row["mtf50_ref_lpcm"] = _median([m.get("mtf50_lpcm", np.nan) for m in target])
        row["dprime_npwe_ref"] = _median([m.get("dprime_npwe", np.nan) for m in target])
        row["laa950_median_pct"] = _get(block, "median")
        row["laa950_ref_median_pct"] = _get(summary["unpaired"]["reference"], "median")
        row["mwu_p"] = _get(block, "mann_whitney_u", "pvalue")
        target_embeddings = [m.get("embedding") for m in target]
        if all("radiomics" in m for m in mine) and target and all("radiomics_own" in m for m in target):
            row["radiomics_aligned_pct"] = aligned_percent([m["radiomics"] for m in mine],
                                                           [m["radiomics_own"] for m in target])
    if all("embedding" in m for m in mine) and target_embeddings and all(e is not None for e in target_embeddings):
        row.update(distribution_columns([m["embedding"] for m in mine], target_embeddings, seed))
    row["noise_sd_ratio"] = _median([m.get("noise_sd_hu", np.nan) / r for m, r in zip(mine, ref_sd, strict=True)])
    _common_columns(row, path, mine, after, timer)
    row["dice_muscle"] = _get(summary["dice"].get(path.source), "muscle", "median")
    row["dice_sat"] = _get(summary["dice"].get(path.source), "sat", "median")
    return row


def _common_columns(row: dict[str, Any], path: BenchmarkPath, mine: list[dict], after: list[float],
                    timer: TimedHarmonizer | None) -> None:
    """The columns every kind computes alike from the harmonized images' extras (``mine``) and LAA-950 (``after``):
    NPS peak, MTF50, d′, SSIM / PSNR / LAA-950 RMSE vs the ground truth, slices/s."""
    for key in ("nps_peak_lpcm", "mtf50_lpcm", "dprime_npwe", "ssim_gt"):
        row[key] = _median([m.get(key, np.nan) for m in mine])
    row["psnr_gt_db"] = _median([m.get("psnr_gt_db", np.nan) for m in mine])
    row["laa950_gt_rmse_pp"] = _rmse(after, [m.get("laa_gt_pct", np.nan) for m in mine])
    if timer is not None:
        row["slices_per_s"] = timer.slices_per_s(path.source, path.target)


def _mean_difference(values: Sequence[float], reference: Sequence[float]) -> float:
    result = agreement(np.asarray(values, float), np.asarray(reference, float))
    return float("nan") if result is None else float(result["mean_difference"])


def _truth_row(method: BenchmarkMethod, path: BenchmarkPath, rows: list[dict], extras: dict,
               timer: TimedHarmonizer | None) -> dict[str, Any]:
    """The leaderboard row of one method x truth path: the harmonized images against the same subject's ground
    truth (cohort rows for the harmonized lung measures and Dice, ``extras`` for the truth's measures); the
    soft-image columns stay empty."""
    row = _empty_row(method, path, "ok")
    sel = [i for i, r in enumerate(rows) if r["kernel"] == path.source and r["target"] == path.target and r["harmonized"]]
    row["n"] = len(sel)
    if not sel:
        row["status"] = "no scans"
        return row
    mine = [extras.get(i, {}) for i in sel]
    _common_columns(row, path, mine, [rows[i]["after_laa_pct"] for i in sel], timer)
    row["perc15_gt_diff_hu"] = _mean_difference([rows[i]["after_perc15_hu"] for i in sel],
                                                [m.get("gt_perc15_hu", np.nan) for m in mine])
    row["mld_gt_diff_hu"] = _mean_difference([rows[i]["after_mean_hu"] for i in sel],
                                             [m.get("gt_mean_hu", np.nan) for m in mine])
    for name in ("muscle", "sat"):
        row[f"dice_{name}"] = _median([rows[i][f"dice_{name}"] for i in sel])
    return row


class InputLabels:
    """Body-composition labels of each input image (uint8 (Z, Y, X)), computed once for all methods and kept
    as ``.npy`` files in ``folder`` (not in memory)."""

    def __init__(self, folder: Path, backend: str) -> None:
        self.folder = Path(folder)
        self.backend = backend
        self.files: dict[tuple[str, str], Path] = {}

    def __call__(self, scan: Scan, volume: Callable[[], Any], lung: np.ndarray) -> np.ndarray:
        key = (scan.subject, scan.kernel)
        if key in self.files:
            return np.load(self.files[key])
        from ctharmonize.segmentation import body_composition

        labels = np.asarray(body_composition(volume(), backend=self.backend, lung=lung), dtype=np.uint8)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files[key] = self.folder / f"{len(self.files)}.npy"
        np.save(self.files[key], labels)
        return labels


def _dice_scores(before: np.ndarray, volume: Any, lung: np.ndarray, same: bool, backend: str) -> dict[str, float]:
    """``dice_<tissue>`` of the harmonized image's body-composition labels against its input's (cohort.py's
    measure; ``same``: the harmonized image is the input file itself)."""
    from ctharmonize.segmentation import body_composition

    after = before if same else body_composition(volume, backend=backend, lung=lung)
    scores = dice(before, after, labels=list(BODY_LABELS.values()))
    return {f"dice_{name}": scores[code] for name, code in BODY_LABELS.items()}


def _scan_measures(cohort: Cohort, wanted: set[tuple[str, str]] | None, backend: str,
                   rows: list[dict] | None = None, labels: InputLabels | None = None,
                   panel: dict[str, Any] | None = None, method: str = "",
                   radiomics: PairedRadiomics | None = None, embed: SliceEmbedder | None = None,
                   own_radiomics: bool = False, physics: dict[str, dict[str, float]] | None = None
                   ) -> dict[int, dict[str, Any]]:
    """Benchmark extras, subject by subject, of the harmonized images of the scans whose (kernel, target) is
    ``wanted`` (None: of the original images of every scan). With ``rows`` and ``labels`` their Dice against
    the input goes into ``rows``; the panel scan's slice goes into ``panel``; with ``radiomics`` the features
    of each harmonized image that has a paired soft scan, and the soft scan's (``radiomics``/``radiomics_soft``),
    or with ``own_radiomics`` those of each harmonized image on its input scan's own ROI (``radiomics``; of the
    original images: ``radiomics_own``); with ``embed`` the CT-feature embeddings of its sampled slices
    (``embedding``). Every image gets its MTF50 and d′ (:func:`physics_measures`, with its input image's FOV mask);
    ``physics`` memoizes them by file for the unharmonized images (the "none" method's and the references' are the
    same files)."""
    harmonized = wanted is not None
    out: dict[int, dict[str, Any]] = {}
    for scans in cohort.by_subject().values():
        chosen = [s for s in scans if not harmonized or (s.harmonized and (s.kernel, s.target) in wanted)]
        if not chosen:
            continue
        cache = ScanCache(scans, backend, "auto")
        truth = ScanTruth(chosen[0], backend)
        for scan in chosen:
            volume = cache.volume(scan, "harmonized" if harmonized else "image")
            lung, _ = cache.lung(scan)
            out[scan.index] = image_measures(volume.array, truth, lung, volume.spacing)
            path = scan.harmonized if harmonized else scan.image
            original = path == scan.image
            if physics is not None and original and path in physics:
                out[scan.index].update(physics[path])
            else:  # a harmonized file read back has no FOV mask: its input's (same grid) applies
                fov = volume.fov_mask if volume.fov_mask is not None or original else cache.volume(scan).fov_mask
                measured = physics_measures(volume.array, volume.spacing, fov, truth)
                out[scan.index].update(measured)
                if physics is not None and original:
                    physics[path] = measured
            if embed is not None:
                out[scan.index]["embedding"] = embed(volume.array)
            soft = next((s for s in scans if s.index == scan.paired_reference), None)
            if radiomics is not None and harmonized and soft is not None and soft.kernel == scan.target:
                out[scan.index]["radiomics"] = radiomics.features(volume, soft, scan.harmonized)
                out[scan.index]["radiomics_soft"] = radiomics.soft(soft)[1]
            elif radiomics is not None and own_radiomics:
                if harmonized:
                    out[scan.index]["radiomics"] = radiomics.features(volume, scan, scan.harmonized)
                else:
                    out[scan.index]["radiomics_own"] = radiomics.soft(scan)[1]
            if rows is not None and labels is not None:
                before = labels(scan, functools.partial(cache.volume, scan), lung)
                rows[scan.index].update(_dice_scores(before, volume, lung, scan.harmonized == scan.image, backend))
            if panel is not None and (scan.subject, scan.kernel) == panel["key"] and scan.target == panel["target"]:
                panel["outputs"][method] = np.asarray(volume.array[panel["slice"]], np.float32)
            cache.volumes.pop((scan.index, "harmonized"), None)
    return out


def _panel_spec(cohort: Cohort, subject: str | None, backend: str) -> dict[str, Any] | None:
    """The panel's scan (``subject``, default the first with a paired path's source kernel), its paired path,
    slice, and the input / paired soft / ground-truth slices (HU)."""
    from ctharmonize.io import read_volume

    paired = [p for p in PATHS if p.kind == "paired"]
    by_key = {(s.subject, s.kernel): s for s in cohort.scans}
    choices = [(s, p) for s in cohort.scans for p in paired
               if s.kernel == p.source and (s.subject, p.target) in by_key and subject in (None, s.subject)]
    if not choices:
        if subject is not None:
            known = sorted({s.subject for s in cohort.scans})
            raise ConfigError(None, f"--panel_subject {subject!r} has no paired scans in the split; subjects: "
                                    f"{', '.join(known)}")
        return None
    scan, path = choices[0]
    cache = ScanCache([scan], backend, "auto")
    volume = cache.volume(scan)
    k = example_slice(cache.lung(scan)[0])
    truth = scan.extra.get("ground_truth")
    return {"key": (scan.subject, scan.kernel), "subject": scan.subject, "path": path.name, "source": path.source,
            "target": path.target, "slice": k, "spacing": volume.spacing, "input": volume.array[k].astype(np.float32),
            "soft": read_volume(by_key[(scan.subject, path.target)].image).array[k].astype(np.float32),
            "truth": read_volume(truth).array[k].astype(np.float32) if truth else None, "outputs": {}}


def _entries_for(entries: list[dict], paths: Sequence[BenchmarkPath]) -> list[dict]:
    """The entries a kind's cohort needs: the paths' sources and targets (copies)."""
    kernels = {p.source for p in paths} | {p.target for p in paths}
    return [dict(e) for e in entries if e.get("kernel") in kernels]


def _harmonize(method: BenchmarkMethod, harmonizer: TimedHarmonizer | None, entries: list[dict],
               paths: Sequence[BenchmarkPath], folder: Path, progress: bool) -> list[dict]:
    """``entries`` with ``harmonized``/``target`` set for the ``paths`` sources: the images themselves for
    "none", else harmonized by the method into ``folder``."""
    goal = {p.source: p.target for p in paths}
    if harmonizer is None:
        for e in entries:
            if e.get("kernel") in goal:
                e.update(harmonized=e["image"], target=goal[e["kernel"]])
        return entries
    from ctharmonize.inference.harmonize_datalist import harmonize_datalist

    return harmonize_datalist(harmonizer, entries, folder, goal, split=None, model_name=method.name,
                              progress=progress)


def _warm_up(harmonizer: Harmonizer, entries: list[dict], paths: Sequence[BenchmarkPath]) -> None:
    """One untimed call through the first path (lazy initialisation stays out of slices/s): one slice, or the
    whole first volume for a harmonizer that measures the volume (:func:`needs_spacing`)."""
    from ctharmonize.inference.harmonizer import call_harmonizer, needs_spacing
    from ctharmonize.io import read_volume

    for p in paths:
        entry = next((e for e in entries if e.get("kernel") == p.source), None)
        if entry is not None:
            volume = read_volume(entry["image"])
            array = volume.array if needs_spacing(harmonizer) else volume.array[:1]
            call_harmonizer(harmonizer, array, p.source, p.target, spacing=volume.spacing)
            return


def _supports(timer: TimedHarmonizer | None, path: BenchmarkPath) -> bool:
    """Whether the method runs ``path``: "none" runs every path; a harmonizer needs the source among its
    ``domains`` and the target among its ``domains`` and its ``targets`` (:func:`target_domains`)."""
    if timer is None:
        return True
    domains = set(timer.domains)
    return path.source in domains and path.target in domains and path.target in set(target_domains(timer))


def _method_rows(method: BenchmarkMethod, timer: TimedHarmonizer | None, kind: str, entries: list[dict],
                 present: set[str], folder: Path, input_labels: InputLabels, refs: dict, panel: dict | None,
                 backend: str, n_resamples: int, seed: int, progress: bool,
                 radiomics: PairedRadiomics | None = None, embed: SliceEmbedder | None = None,
                 physics: dict | None = None) -> list[dict[str, Any]]:
    """The rows of one method on the paths of one ``kind``: harmonize (into ``folder``), evaluate the cohort,
    add the benchmark measures, summarize; "not supported" / "no scans" / "no ground truth" (a truth path whose
    source kernel has no entry with ``ground_truth``) rows for the paths it cannot run."""
    kind_paths = [p for p in PATHS if p.kind == kind]
    with_truth = {e.get("kernel") for e in entries if e.get(TRUTH_DOMAIN)}
    rows: dict[BenchmarkPath, dict[str, Any]] = {}
    run = []
    for p in kind_paths:
        if not _supports(timer, p):
            rows[p] = _empty_row(method, p, "not supported")
        elif p.source not in present or (kind != "truth" and p.target not in present):
            rows[p] = _empty_row(method, p, "no scans")
        elif kind == "truth" and p.source not in with_truth:
            rows[p] = _empty_row(method, p, "no ground truth")
        else:
            run.append(p)
    if not run:
        return [rows[p] for p in kind_paths]
    kind_entries = _entries_for(entries, run)
    if kind == "truth":  # the sources' entries that have a ground truth (the reference)
        kind_entries = [e for e in kind_entries if e.get(TRUTH_DOMAIN)]
    if timer is not None:
        _warm_up(timer.harmonizer, kind_entries, run)
    done = _harmonize(method, timer, kind_entries, run, folder, progress)
    cohort = build_cohort(done, DEFAULT_REFERENCE_KERNEL, DEFAULT_PAIRED_REFERENCES)
    result = evaluate_cohort(cohort, backend=backend, mask_source="auto", threshold=THRESHOLD_HU,
                             body_composition=False, similarity=kind == "paired", progress=progress)
    extras = _scan_measures(cohort, {(p.source, p.target) for p in run}, backend, rows=result.rows,
                            labels=input_labels, method=method.name,
                            panel=panel if kind == "paired" and method.role != "none" else None,
                            radiomics=radiomics if kind == "paired" or (kind == "unpaired" and embed is not None)
                            else None,
                            embed=embed if kind != "truth" else None, own_radiomics=kind == "unpaired",
                            physics=physics)
    if kind == "truth":
        for p in run:
            rows[p] = _truth_row(method, p, result.rows, extras, timer)
    else:
        summary = summarize(result.rows, DEFAULT_REFERENCE_KERNEL, THRESHOLD_HU, n_resamples=n_resamples, seed=seed)
        for p in run:
            rows[p] = _path_row(method, p, result.rows, summary, extras, refs, timer, seed)
    return [rows[p] for p in kind_paths]


def _datalist_info(datalist: str | os.PathLike) -> dict[str, Any]:
    try:
        doc = json.loads(Path(datalist).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        doc = {}
    return {"path": os.fspath(datalist), "name": doc.get("name", ""), "description": doc.get("description", "")}


def run_benchmark(
    bundles: Sequence[str] | str,
    datalist: str | os.PathLike,
    out: str | os.PathLike,
    split: str | None = "test",
    baseline: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    amp: bool | str | None = None,
    overwrite: bool = False,
    panel_subject: str | None = None,
    trust_bundle: bool = False,
    backend: str = "threshold",
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    command: str | None = None,
    spacing_policy: str = "resample",
    radiomics: bool = True,
    distribution: bool = True,
    distribution_slices: int = DISTRIBUTION_SLICES,
) -> dict[str, Any]:
    """Benchmark every method on the ``split`` of ``datalist``; write the folder ``out`` atomically.

    Args:
        bundles: bundle folders to rank (a list, or comma-separated); baseline: see :func:`plan_methods`.
        datalist: datalist JSON (simulated: with ``ground_truth``, ``labels``, ``lung``).
        out: output folder: leaderboard.csv / .md / .json, bars.png, panel.png.
        device, batch_size, amp: override every bundle's torch device / slices per pass / precision.
        panel_subject: subject of panel.png (default the first with a paired scan).
        trust_bundle: run bundles that are not trusted otherwise.
        backend: body-composition / lung segmentation backend; n_resamples, seed: bootstrap of the CI.
        command: the command line recorded in leaderboard.md/json (default: the ``ctharmonize benchmark``
            command line of these arguments).
        spacing_policy: "resample" or "refuse" scans outside a bundle's trained pixel spacing
            (:mod:`ctharmonize.inference.spacing_policy`).
        radiomics: add the radiomics CCC columns of the paired paths (pyradiomics, :mod:`.benchmark_radiomics`).
        distribution: add the distribution columns (:mod:`.benchmark_distribution`): FID / KID in the CT feature
            space (``seed`` fixes the KID subsets) and, with ``radiomics``, the % of radiomic features aligned.
        distribution_slices: evenly spaced axial slices per volume embedded for FID / KID.

    Returns:
        The leaderboard.json document.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.data import datalist_entries, entry_paths
    from ctharmonize.evaluation.run import write_csv, write_json
    from ctharmonize.inference.bundle_harmonizer import load_bundle_harmonizer
    from ctharmonize.inference.slice_harmonizer import amp_mode
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output

    bundles = comma_list(bundles)
    command_line = _command_line(dict(locals()))
    check_spacing_policy(spacing_policy)
    if distribution and int(distribution_slices) < 1:
        raise ConfigError(None, f"--distribution_slices must be >= 1, got {distribution_slices}")
    amp = None if amp is None else amp_mode(amp)
    methods = plan_methods(bundles, baseline, trust_bundle)
    entries, source = datalist_entries(datalist, split)
    check_output(out, [datalist, *entry_paths(entries), *(m.bundle for m in methods if m.bundle is not None)],
                 overwrite)
    if not entries:
        raise DatalistError(source, f"no entries in split {split!r} to benchmark")
    full = build_cohort(entries, DEFAULT_REFERENCE_KERNEL, DEFAULT_PAIRED_REFERENCES, source=source)
    panel = _panel_spec(full, panel_subject, backend)
    targets = {p.target for p in PATHS if p.kind != "truth"}
    soft = build_cohort([e for e in entries if e.get("kernel") in targets], DEFAULT_REFERENCE_KERNEL,
                        DEFAULT_PAIRED_REFERENCES, source=source)
    embed = SliceEmbedder(distribution_slices, device=device) if distribution else None
    features = PairedRadiomics() if radiomics else None
    physics: dict[str, dict[str, float]] = {}  # MTF50 / d' of the unharmonized images, by file
    refs_by_index = _scan_measures(soft, None, backend, radiomics=features if embed is not None else None,
                                   embed=embed, own_radiomics=True, physics=physics)
    refs = {(s.subject, s.kernel): refs_by_index[s.index] for s in soft.scans}
    present = {s.kernel for s in full.scans}
    rows: list[dict[str, Any]] = []
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        scratch = tmp / "harmonized.tmp"
        input_labels = InputLabels(tmp / "labels.tmp", backend)
        for m, method in enumerate(methods):
            timer = None
            if method.bundle is not None:
                timer = TimedHarmonizer(load_bundle_harmonizer(method.bundle, device=device, batch_size=batch_size, amp=amp,
                                                               trust=trust_bundle, spacing_policy=spacing_policy))
            for kind in KINDS:
                rows += _method_rows(method, timer, kind, entries, present, scratch / f"{m}_{kind}", input_labels,
                                     refs, panel, backend, n_resamples, seed, progress, features, embed, physics)
            shutil.rmtree(scratch, ignore_errors=True)
            del timer
        rows.sort(key=lambda r: ([p.name for p in PATHS].index(r["path"]), [x.name for x in methods].index(r["method"])))
        has_baseline = any(m.role == "baseline" for m in methods)
        beats = beats_baseline(rows, lambda r: r["role"] == "bundle") if has_baseline else []
        doc = {
            "command": command or command_line,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "datalist": _datalist_info(datalist), "split": split, "n_scans": len(full.scans),
            "kernels": {k: sum(1 for s in full.scans if s.kernel == k) for k in full.kernels},
            "reference_kernel": DEFAULT_REFERENCE_KERNEL,
            "settings": {"backend": backend, "threshold_hu": THRESHOLD_HU, "n_resamples": n_resamples, "seed": seed,
                         "device": device, "batch_size": batch_size, "amp": amp, "spacing_policy": spacing_policy,
                         "radiomics": radiomics, "distribution": distribution,
                         "distribution_slices": distribution_slices if distribution else None,
                         "feature_network": "CTKernelFeatures (shipped weights, last stage, 128-d)" if distribution
                         else None,
                         "noise_region": f"skeletal muscle ({NOISE_LABEL}) eroded in-plane by max({NOISE_EROSION_PX} px, "
                                         f"{NOISE_EROSION_MM:g} mm)",
                         "mtf": "skin-air edge (ctharmonize.physics.skin_air_mtf, defaults, image FOV mask)",
                         "dprime": {"observer": "npwe", "diameter_mm": OBSERVER.diameter_mm,
                                    "contrast_hu": OBSERVER.contrast_hu,
                                    "viewing_distance_mm": OBSERVER.viewing_distance_mm, "alpha": OBSERVER.alpha,
                                    "nps": f"measure_nps of image - ground truth where the truth is flat (max - min "
                                           f"<= {FLAT_TOLERANCE_HU:g} HU over max({NOISE_EROSION_PX} px, "
                                           f"{NOISE_EROSION_MM:g} mm) in-plane) in the body; without a ground "
                                           f"truth its uniform-ROI mode; ROI side the first of "
                                           f"{list(NPS_ROI_SIZES)} px that fits"}},
            "methods": [{"name": m.name, "role": m.role, "bundle": m.bundle} for m in methods],
            "columns": [{"key": c.key, "header": c.header, "kinds": list(c.kinds), "better": c.better}
                        for c in COLUMNS],
            "rows": rows,
            "beats_baseline": beats,
        }
        shutil.rmtree(input_labels.folder, ignore_errors=True)
        write_csv(rows, tmp / "leaderboard.csv")
        write_json(doc, tmp / "leaderboard.json")
        (tmp / "leaderboard.md").write_text(_markdown(doc, has_baseline, panel is not None), encoding="utf-8")
        bars_plot(rows, tmp / "bars.png")
        if panel is not None:
            outputs = [(m.name, panel["outputs"].get(m.name)) for m in methods if m.role != "none"]
            method_panel({**panel, "outputs": outputs}, tmp / "panel.png")
    return doc


def _command_line(args: Mapping[str, Any]) -> str:
    """The ``ctharmonize benchmark`` command line of these :func:`run_benchmark` arguments (required ones, and
    the others where they differ from their defaults)."""
    words = ["ctharmonize", "benchmark"]
    for name, param in inspect.signature(run_benchmark).parameters.items():
        value = args[name]
        if name == "command" or (param.default is not inspect.Parameter.empty and value == param.default):
            continue
        if isinstance(value, bool):
            words.append(f"--{name}" if value else f"--no{name}")
        else:
            words += [f"--{name}", ",".join(value) if name == "bundles" else os.fspath(value)
                      if isinstance(value, os.PathLike) else str(value)]
    return shlex.join(words)


def _markdown(doc: Mapping[str, Any], has_baseline: bool, has_panel: bool) -> str:
    info = doc["datalist"]
    kernels = ", ".join(f"{k}: {n}" for k, n in doc["kernels"].items())
    lines = ["# Benchmark leaderboard", "",
             f"Datalist `{info['path']}`" + (f" ({info['name']})" if info["name"] else "") + f", split "
             f"`{doc['split']}`: {doc['n_scans']} scans ({kernels}). {doc['date']}.", ""]
    if info["description"]:
        lines += [f"> {info['description']}", ""]
    lines += ["Command:", "", "```bash", doc["command"], "```", "",
              "Paired rows compare the harmonized image with the same subject's soft-kernel image; unpaired rows "
              "the harmonized GE images with the Siemens B30f images; truth rows (`kernel->ground_truth`) the "
              "image harmonized to the ground truth with the same subject's ground truth (values in [brackets]: "
              "the reference). "
              "Medians over scans except RMSEs (over subjects) and Perc15/MLD differences (means); – = not "
              "applicable. Definitions and the better direction of every column: docs/benchmark.md.", "",
              "## Leaderboard", "", *leaderboard_markdown(doc["rows"]), "", "## Beats the baseline?", ""]
    if has_baseline and doc["beats_baseline"]:
        lines += ["✓ better than the baseline bundle on the same path, ✗ worse, = equal, – not comparable; "
                  "'every column' is ✓ when every comparable column is ✓.", "", *beats_markdown(doc["beats_baseline"])]
    elif has_baseline:
        lines += ["No bundle besides the baseline was given."]
    else:
        lines += ["No baseline (--baseline '')."]
    lines += ["", "## Figures", "", "![main columns per method](bars.png)", ""]
    if has_panel:
        lines += ["![one slice through every method, lung window W1500/L-600](panel.png)", ""]
    return "\n".join(lines)
