"""``ctharmonize truth-table``: paper 001's Table I form on a simulated set with ground truth.

Paper 001 harmonizes every kernel and dose to the noise-free, blur-free ground truth (GT,
:data:`~ctharmonize.domains.reference.TRUTH_DOMAIN`) and reports, before (NH, the images as reconstructed) and
after (H), SSIM, NRMSE, PSNR against the GT and |Δ|LAA-950, |Δ|Perc15, |Δ|lung mass against the GT, "ALL METRICS
WERE MEASURED ON A SINGLE 2D SLICE", mean ± SD; per kernel group and dose; d′ and the NPS before and after; and
ComBat on [LAA-950, Perc15] for comparison. Definitions (also in the JSON's ``definitions`` and docs/evaluation.md):

* **Slices**: per subject (ground-truth volume), ``slices`` evenly spaced axial slices
  (:func:`~ctharmonize.evaluation.sensitivity_run.slice_indices`) among those whose GT lung mask has at least
  ``min_lung_pixels`` pixels (every slice when none has); every rendition of the subject uses the same slices. Only
  those slices are harmonized (a sub-volume through :func:`~ctharmonize.inference.harmonize_volume`, which passes
  the pixel spacing; a harmonizer that measures the MTF per volume measures it on them). ``slices=0``: all slices.
* **Image metrics** per slice on [-1, 1] (:func:`~ctharmonize.transforms.hu_to_unit`, HU window [-1024, 3072]),
  inside the image's FOV mask (the whole slice without one), with :mod:`ctharmonize.metrics.image_similarity`
  (scikit-image): NRMSE (%) = 100 ‖x − g‖₂ / ‖g‖₂ (``normalized_root_mse``, "euclidean") over FOV pixels; PSNR (dB)
  = 10 log10(2² / MSE) over FOV pixels (``data_range=2``; inf when equal); SSIM (%) = 100 × the mean over FOV
  pixels of the 7 × 7 uniform-window SSIM map (``structural_similarity``, ``data_range=2``) of the whole slice with
  the pixels outside the FOV set to the GT's (they add no difference; paper 001 used whole slices, whose outside-FOV
  corners hold no image).
* **Biomarkers** per slice in the GT lung mask (both lungs) ∩ FOV, the same pixels for the image and the GT;
  slices with fewer than ``min_lung_pixels`` such pixels have NaN biomarkers (left out of their means):
  LAA-950 (%) (:func:`~ctharmonize.metrics.laa`: HU < −950), Perc15 (HU) (:func:`~ctharmonize.metrics.perc15`),
  lung mass (g) = (mean lung HU + 1024) / 1024 × pixel area × slice thickness (cm³) × N_lung
  (:func:`~ctharmonize.metrics.lung_mass_g` with ``air_hu=-1024, mass_scale=1024``: water 1 g/cm³; thickness the
  header's, else the slice spacing); |Δ| = |image − GT|.
* **Rows**: method ("none", each bundle / harmonizer / harmonized-files method, "combat") × group: ``all``, each
  ``kernel_group`` (smooth/medium/sharp; "n/a" without the field), each ``dose`` (low/high; "n/a"), each
  ``rendition`` × dose (the kernel without a ``rendition``); ``n`` slices; mean ± SD (ddof 1) per metric.
* **d′ and NPS** per volume (the sampled slices) before and after, and of the GT: MTF at the skin–air edge
  (:func:`~ctharmonize.physics.skin_air_mtf`), NPS of ``image − GT`` in the GT's flat body region
  (:func:`~ctharmonize.evaluation.benchmark_measures.scan_nps`, the benchmark's), NPWE d′ of a 4 mm, 100 HU disk
  (:func:`~ctharmonize.physics.detectability`). On a GT-like image the NPS is 0 (noise SD 0, peak NaN) and d′ is
  set by the internal noise alone (large); values that cannot be measured are NaN (JSON null) with a status.
* **ComBat** (:mod:`.truth_table_combat`): the unharmonized slices' [LAA-950, Perc15], batch = rendition × dose,
  plus the GT slices as batch "ground_truth", the ``ref_batch``; |Δ| of the adjusted features against the GT.

Output folder (atomic, refused if it exists unless ``overwrite``): ``truth_table.md`` (Table I form, per-group
tables, physics), ``truth_table.csv`` (summary rows), ``truth_table_slices.csv`` (one row per method × slice),
``truth_table_physics.csv`` (one row per method × volume) and ``truth_table.json`` (command, definitions, settings,
rows, physics, ComBat info, notices).
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import logging
import math
import os
import shlex
import types
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ctharmonize.domains.reference import TRUTH_DOMAIN
from ctharmonize.errors import ConfigError, DatalistError, InputError

__all__ = ["BIOMARKER_METRICS", "DEFAULT_SLICES", "DEFINITIONS", "IMAGE_METRICS", "METRICS", "MIN_LUNG_PIXELS",
           "PHYSICS_METRICS", "image_metrics", "lung_biomarkers", "run_truth_table", "summarize_physics",
           "summarize_slices", "truth_table_markdown"]

log = logging.getLogger(__name__)

DEFAULT_SLICES = 8
MIN_LUNG_PIXELS = 100
IMAGE_METRICS = ("nrmse_pct", "ssim_pct", "psnr_db")
BIOMARKER_METRICS = ("abs_dlaa950_pct", "abs_dperc15_hu", "abs_dmass_g")
METRICS = (*IMAGE_METRICS, *BIOMARKER_METRICS)
PHYSICS_METRICS = ("dprime_npwe", "noise_sd_hu", "nps_peak_lp_cm", "mtf50_lp_cm")
GROUP_BYS = ("all", "kernel_group", "dose", "rendition_dose")
NA = "n/a"
_LABELS = {"nrmse_pct": "NRMSE (%)", "ssim_pct": "SSIM (%)", "psnr_db": "PSNR (dB)",
           "abs_dlaa950_pct": "\\|Δ\\|LAA-950 (%)", "abs_dperc15_hu": "\\|Δ\\|Perc15 (HU)",
           "abs_dmass_g": "\\|Δ\\|Lung mass (g)", "dprime_npwe": "d′ (NPWE)", "noise_sd_hu": "noise SD (HU)",
           "nps_peak_lp_cm": "NPS peak (lp/cm)", "mtf50_lp_cm": "MTF50 (lp/cm)"}
_DIGITS = {"nrmse_pct": 1, "ssim_pct": 1, "psnr_db": 1, "abs_dlaa950_pct": 2, "abs_dperc15_hu": 1, "abs_dmass_g": 3,
           "dprime_npwe": 1, "noise_sd_hu": 1, "nps_peak_lp_cm": 2, "mtf50_lp_cm": 2}
_ORDER = {"kernel_group": ("smooth", "medium", "sharp"), "dose": ("low", "high")}
_RESERVED = {"none", "combat", TRUTH_DOMAIN}

DEFINITIONS = {
    "slices": "per subject, N evenly spaced axial slices among those whose GT lung mask has >= min_lung_pixels "
              "pixels (all slices when none has), the same for every rendition; only they are harmonized",
    "normalisation": "HU clipped to [-1024, 3072] and scaled to [-1, 1] (ctharmonize.transforms.hu_to_unit)",
    "nrmse_pct": "100 * ||x - g||_2 / ||g||_2 over the pixels inside the image's FOV (skimage normalized_root_mse, "
                 "euclidean), on [-1, 1]",
    "psnr_db": "10 log10(2^2 / MSE) over the FOV pixels (skimage peak_signal_noise_ratio, data_range 2); inf (JSON "
               "null) when equal",
    "ssim_pct": "100 * mean over the FOV pixels of the SSIM map of the whole slice (skimage structural_similarity, "
                "7x7 uniform window, data_range 2), outside-FOV pixels set to the GT's",
    "biomarker_mask": "GT lung mask (both lungs) inside the FOV, the same pixels for the image and the GT; fewer "
                      "than min_lung_pixels pixels: NaN biomarkers",
    "laa950_pct": "100 * #(lung HU < -950) / #lung (ctharmonize.metrics.laa)",
    "perc15_hu": "15th percentile of lung HU, numpy linear interpolation (ctharmonize.metrics.perc15)",
    "mass_g": "(mean lung HU + 1024) / 1024 * pixel area * slice thickness (cm^3) * N_lung, water 1 g/cm^3 "
              "(ctharmonize.metrics.lung_mass_g, air_hu -1024, mass_scale 1024); thickness: header, else the "
              "slice spacing",
    "abs_delta": "|value on the image - value on the GT slice| per slice",
    "summary": "mean and SD (ddof 1) over the slices of a method and group (NaN left out); n_slices counts slices, "
               "n_lung_slices those with biomarkers",
    "groups": "all; kernel_group (smooth/medium/sharp, n/a without the field); dose (low/high, n/a); rendition x "
              "dose (the kernel without a rendition field)",
    "physics": "per volume (the sampled slices): skin-air MTF (ctharmonize.physics.skin_air_mtf), NPS of image - GT "
               "in the GT's flat body region (evaluation.benchmark_measures.scan_nps), NPWE d' of a 4 mm 100 HU disk "
               "(ctharmonize.physics.detectability); NPS peak NaN when the noise SD is 0 (a GT-like image, whose "
               "d' is then set by the internal noise alone)",
    "combat": "neuroCombat (parametric EB, no covariates) on the unharmonized slices' [LAA-950, Perc15], batch = "
              "rendition x dose, plus the GT slices as batch 'ground_truth' = ref_batch (the virtual trial's "
              "reference is the truth); |delta| of the adjusted features against the GT; image metrics and mass NaN",
}


# --- per-slice measures --------------------------------------------------------------------------------------------

def image_metrics(image_hu: np.ndarray, truth_hu: np.ndarray, fov: np.ndarray | None = None) -> dict[str, float]:
    """NRMSE (%), SSIM (%) and PSNR (dB) of one 2-D slice (HU) against its GT slice (HU) on [-1, 1] inside the
    FOV (module docstring)."""
    from ctharmonize.metrics.image_similarity import nrmse, psnr, ssim
    from ctharmonize.transforms import hu_to_unit

    x = hu_to_unit(np.asarray(image_hu, dtype=np.float32))
    g = hu_to_unit(np.asarray(truth_hu, dtype=np.float32))
    m = np.ones(x.shape, dtype=bool) if fov is None else np.asarray(fov, dtype=bool)
    if not m.any():
        return dict.fromkeys(IMAGE_METRICS, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {"nrmse_pct": 100.0 * nrmse(x, g, normalization="euclidean", hu_window=None, mask=m),
                "ssim_pct": 100.0 * ssim(np.where(m, x, g), g, data_range=2.0, hu_window=None, mask=m),
                "psnr_db": psnr(x, g, data_range=2.0, hu_window=None, mask=m)}


def lung_biomarkers(hu: np.ndarray, mask: np.ndarray, spacing: Sequence[float],
                    min_pixels: int = MIN_LUNG_PIXELS) -> dict[str, float]:
    """LAA-950 (%), Perc15 (HU) and lung mass (g) of one slice (HU) in ``mask``; ``spacing`` (sx, sy, thickness) mm.
    NaN when the mask has fewer than ``min_pixels`` pixels."""
    from ctharmonize.metrics import laa, lung_mass_g, perc15

    mask = np.asarray(mask, dtype=bool)
    if int(mask.sum()) < max(int(min_pixels), 1):
        return {"laa950_pct": math.nan, "perc15_hu": math.nan, "mass_g": math.nan}
    hu = np.asarray(hu, dtype=np.float32)
    return {"laa950_pct": laa(hu, mask, -950.0), "perc15_hu": perc15(hu, mask, 15.0),
            "mass_g": lung_mass_g(hu, mask, spacing, air_hu=-1024.0, mass_scale=1024.0)}


def _physics(hu: np.ndarray, spacing: Sequence[float], fov: np.ndarray | None, truth: Any) -> dict[str, Any]:
    """d′ (NPWE, PWEI), noise SD, NPS peak and MTF50 of one (sub)volume; NaN and a status where not measurable."""
    from ctharmonize.evaluation.benchmark_measures import OBSERVER, scan_nps
    from ctharmonize.physics import detectability, skin_air_mtf

    out: dict[str, Any] = {"dprime_npwe": math.nan, "dprime_pwei": math.nan, "noise_sd_hu": math.nan,
                           "nps_peak_lp_cm": math.nan, "mtf50_lp_cm": math.nan, "nps_roi_px": math.nan}
    status = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        noise = scan_nps(hu, spacing, fov, truth)
        if noise is None:
            status.append("NPS: no flat GT region fits a ROI")
        else:
            out.update(noise_sd_hu=float(noise.noise_sd), nps_roi_px=noise.roi_size,
                       nps_peak_lp_cm=float(noise.peak_frequency) if noise.noise_sd > 0 else math.nan)
        edge = None
        try:
            edge = skin_air_mtf(hu, spacing, fov_mask=fov)
            out["mtf50_lp_cm"] = float(edge.mtf50)
        except InputError as err:
            status.append(f"MTF: {err.problem}")
        if edge is not None and noise is not None:
            d = detectability(edge, noise, OBSERVER)
            out.update(dprime_npwe=float(d.dprime_npwe), dprime_pwei=float(d.dprime_pwei))
    out["status"] = "; ".join(status) or "ok"
    return out


# --- summaries -----------------------------------------------------------------------------------------------------

def _mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    v = np.array([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], float)
    if v.size == 0:
        return math.nan, math.nan, 0
    if not np.isfinite(v).all():
        return float(np.mean(v)) if len(set(np.sign(v[~np.isfinite(v)]))) == 1 else math.nan, math.nan, int(v.size)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else math.nan), int(v.size)


def _groups(rows: Sequence[Mapping[str, Any]], by: str) -> list[str]:
    if by == "all":
        return ["all"]
    seen = list(dict.fromkeys(str(r[by]) for r in rows))
    order = _ORDER.get(by, ())
    return [g for g in order if g in seen] + [g for g in seen if g not in order]


def summarize_slices(rows: Sequence[Mapping[str, Any]], methods: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Summary rows (``method``, ``role``, ``group_by``, ``group``, ``n_slices``, ``n_lung_slices``,
    ``<metric>_mean``, ``<metric>_sd``) of slice rows for each ``(method, role)`` and group."""
    out = []
    for by in GROUP_BYS:
        for group in _groups(rows, by):
            for method, role in methods:
                chosen = [r for r in rows if r["method"] == method and (by == "all" or str(r[by]) == group)]
                if not chosen:
                    continue
                row: dict[str, Any] = {"method": method, "role": role, "group_by": by, "group": group,
                                       "n_slices": len(chosen),
                                       "n_lung_slices": sum(1 for r in chosen if math.isfinite(r["gt_laa950_pct"]))}
                for m in METRICS:
                    row[f"{m}_mean"], row[f"{m}_sd"], _ = _mean_sd([r[m] for r in chosen])
                out.append(row)
    return out


def summarize_physics(rows: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    """Mean ± SD (and the count of measured volumes) of :data:`PHYSICS_METRICS` per method and group (all,
    kernel group, dose; the GT volumes' row "ground_truth" under group "all")."""
    out = []
    for by in GROUP_BYS[:3]:
        for group in _groups([r for r in rows if r["method"] != TRUTH_DOMAIN], by):
            for method in methods:
                if method == TRUTH_DOMAIN and by != "all":
                    continue
                chosen = [r for r in rows if r["method"] == method and (by == "all" or str(r[by]) == group)]
                if not chosen:
                    continue
                row: dict[str, Any] = {"method": method, "group_by": by, "group": group, "n_volumes": len(chosen)}
                for m in PHYSICS_METRICS:
                    row[f"{m}_mean"], row[f"{m}_sd"], row[f"{m}_n"] = _mean_sd([r[m] for r in chosen])
                out.append(row)
    return out


# --- inputs --------------------------------------------------------------------------------------------------------

def _entries(datalist: Any, split: str | None) -> tuple[list[dict[str, Any]], Path | None]:
    from ctharmonize.data import datalist_entries

    entries, where = datalist_entries(datalist, split)
    entries = [e for e in entries if e.get("kernel") != TRUTH_DOMAIN and not e.get("source_kernel")]
    if not entries:
        raise DatalistError(where, f"no scans in split {split!r}")
    for e in entries:
        for key, why in ((TRUTH_DOMAIN, "its noise-free ground-truth volume (ctharmonize simulate writes it)"),
                         ("lung", "the ground truth's lung mask"), ("kernel", "its kernel domain")):
            if not e.get(key):
                raise DatalistError(where, f"entry {e.get('image')}: no {key!r} ({why}); truth-table scores images "
                                           "against a ground truth")
    return entries, where


def _labels(entry: Mapping[str, Any]) -> dict[str, str]:
    group = str(entry.get("kernel_group") or NA)
    dose = str(entry.get("dose") or NA)
    rendition = str(entry.get("rendition") or entry["kernel"])
    return {"kernel_group": group, "dose": dose, "rendition": rendition,
            "rendition_dose": rendition if dose == NA else f"{rendition} {dose} dose"}


def _lung_slices(lung: np.ndarray, wanted: int, min_pixels: int) -> list[int]:
    from ctharmonize.evaluation.sensitivity_run import slice_indices

    counts = lung.reshape(lung.shape[0], -1).sum(axis=1)
    candidates = [z for z in range(lung.shape[0]) if counts[z] >= max(min_pixels, 1)] or list(range(lung.shape[0]))
    if wanted <= 0:
        return candidates
    return [candidates[i] for i in slice_indices(len(candidates), wanted)]


def _subvolume(volume: Any, index: Sequence[int]) -> Any:
    index = list(index)
    fov = None if volume.fov_mask is None else volume.fov_mask[index]
    positions = None if volume.slice_positions is None else volume.slice_positions[index]
    return dataclasses.replace(volume, array=np.ascontiguousarray(volume.array[index]), fov_mask=fov,
                               slice_positions=positions, slice_datasets=None, source_dataset=None)


def _manifest_images(name: str, path: str) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A harmonize-cohort folder or manifest.csv → (manifest, {real input path: (output path, target kernel)})."""
    from ctharmonize.inference.cohort_manifest import MANIFEST_FIELDS, read_manifest_rows

    p = Path(path)
    manifest = p / "manifest.csv" if p.is_dir() else p
    if not manifest.is_file() or manifest.suffix.lower() != ".csv":
        raise DatalistError(p, f"method {name!r}: needs a harmonize-cohort output folder or its manifest.csv "
                               "(harmonized images are matched to their input by the manifest's input path)")
    rows = read_manifest_rows(manifest)
    if not rows:
        raise DatalistError(manifest, f"method {name!r}: not a harmonize-cohort manifest, or no complete rows "
                                      f"(columns {', '.join(MANIFEST_FIELDS)})")
    found = {}
    for row in rows:
        src = Path(row["input"]) if os.path.isabs(row["input"]) else manifest.parent / row["input"]
        found[os.path.realpath(src)] = (os.fspath(manifest.parent / row["output"]), row["target_kernel"])
    return manifest, found


@dataclasses.dataclass
class _Method:
    name: str
    role: str
    harmonizer: Any = None
    source: str | None = None  # bundle folder or manifest
    images: dict[str, tuple[str, str]] | None = None


def _check_truth_target(name: str, harmonizer: Any, where: str | os.PathLike | None) -> None:
    from ctharmonize.inference.harmonizer import target_domains

    if not callable(harmonizer) or TRUTH_DOMAIN not in target_domains(harmonizer):
        known = ", ".join(target_domains(harmonizer)) or "none"
        raise ConfigError(where, f"{'the bundle' if where is not None else f'harmonizer {name!r}'} does not map to "
                                 f"{TRUTH_DOMAIN!r} (it maps to: {known}); truth-table scores harmonizers to the "
                                 "ground truth (paper 001: any kernel and dose to the truth)")


def _methods(bundles: Sequence[str], harmonizers: Mapping[str, Any] | None, harmonized: Any, device: str | None,
             batch_size: int | None, trust: bool, spacing_policy: str) -> list[_Method]:
    from ctharmonize.evaluation.benchmark import plan_methods
    from ctharmonize.evaluation.radiomics_pairs import parse_harmonized
    from ctharmonize.inference.bundle_harmonizer import load_bundle_harmonizer

    methods = [_Method("none", "non-harmonized")]

    def add(method: _Method) -> None:
        if method.name in {m.name for m in methods} or method.name.lower() in _RESERVED:
            raise ConfigError(None, f"method name {method.name!r} is reserved or given twice")
        methods.append(method)

    for name, harmonizer in (harmonizers or {}).items():
        _check_truth_target(str(name), harmonizer, None)
        add(_Method(str(name), "harmonizer", harmonizer))
    for m in plan_methods(bundles, baseline="", trust=trust)[1:]:
        harmonizer = load_bundle_harmonizer(m.bundle, device=device, batch_size=batch_size, trust=trust,
                                            spacing_policy=spacing_policy)
        _check_truth_target(m.name, harmonizer, m.bundle)
        add(_Method(m.name, "bundle", harmonizer, m.bundle))
    if harmonized is not None and not (isinstance(harmonized, Mapping | str) and not harmonized):
        for name, path in parse_harmonized(harmonized).items():
            manifest, images = _manifest_images(name, path)
            add(_Method(name, "harmonized files", source=os.fspath(manifest), images=images))
    return methods


# --- the command ---------------------------------------------------------------------------------------------------

def _harmonized_file(method: _Method, image: str) -> str:
    """The method's harmonized file of ``image`` (harmonized to the GT, existing); a one-line error otherwise."""
    found = (method.images or {}).get(os.path.realpath(image))
    if found is None:
        raise DatalistError(method.source, f"method {method.name!r}: no harmonized image of {image}")
    path, target = found
    if target != TRUTH_DOMAIN:
        raise DatalistError(method.source, f"method {method.name!r}: {image} was harmonized to {target!r}, not "
                                           f"{TRUTH_DOMAIN!r}")
    if not os.path.isfile(path):
        raise DatalistError(method.source, f"method {method.name!r}: file not found: {path}")
    return path


def _harmonized_slices(method: _Method, entry: Mapping[str, Any], volume: Any, sub: Any,
                       index: Sequence[int]) -> np.ndarray | None:
    """The method's HU slices (len(index), Y, X) of ``entry``; None when the method does not know its kernel."""
    from ctharmonize.inference import harmonize_volume
    from ctharmonize.io import read_volume

    image = os.fspath(entry["image"])
    if method.harmonizer is None and method.images is None:
        return sub.array
    if method.images is not None:
        path = _harmonized_file(method, image)
        done = read_volume(path)
        if done.shape != volume.shape:
            raise InputError(path, f"harmonized image shape {done.shape} differs from its input {image} "
                                   f"{volume.shape}")
        return done.array[list(index)]
    domains = getattr(method.harmonizer, "domains", None)
    if domains is not None and entry["kernel"] not in domains:
        return None
    try:
        return harmonize_volume(sub, method.harmonizer, entry["kernel"], TRUTH_DOMAIN, path=image).array
    except InputError as err:
        if err.path is None:
            raise InputError(image, err.problem) from None
        raise


def _score(by_truth: Mapping[str, Sequence[Mapping[str, Any]]], methods: Sequence[_Method], slices: int,
           min_lung_pixels: int, physics: bool, bar: Any, slice_rows: list, physics_rows: list,
           truth_features: dict, not_supported: dict, chosen_slices: dict) -> None:
    """Fill the slice rows, physics rows, GT features (for ComBat), unsupported scans and chosen slices."""
    from ctharmonize.evaluation.benchmark_measures import flat_region
    from ctharmonize.io import read_label_map, read_volume

    for truth_path, group in by_truth.items():
        gt = read_volume(truth_path)
        lungs: dict[str, np.ndarray] = {}

        def lung_of(entry: Mapping[str, Any], gt: Any = gt, lungs: dict = lungs) -> np.ndarray:
            key = os.fspath(entry["lung"])
            if key not in lungs:
                lungs[key] = read_label_map(key, like=gt) > 0
            return lungs[key]

        index = _lung_slices(lung_of(group[0]), slices, min_lung_pixels)
        chosen_slices[truth_path] = index
        gt_sub = gt.array[index]
        thickness = float(gt.header.slice_thickness or gt.spacing[2])
        gt_spacing = (float(gt.spacing[0]), float(gt.spacing[1]), thickness)
        for k, z in enumerate(index):
            truth_features[(truth_path, z)] = lung_biomarkers(gt_sub[k], lung_of(group[0])[z], gt_spacing,
                                                              min_lung_pixels)
        truth_ns = None
        if physics:
            truth_ns = types.SimpleNamespace(truth=gt_sub, flat=flat_region(gt_sub, gt.spacing))
            physics_rows.append({"method": TRUTH_DOMAIN, "image": truth_path, "subject": group[0].get("subject"),
                                 "kernel": TRUTH_DOMAIN, "kernel_group": NA, "dose": NA, "rendition": TRUTH_DOMAIN,
                                 "rendition_dose": TRUTH_DOMAIN, "slices": len(index),
                                 **_physics(gt_sub, gt.spacing, None, truth_ns)})
        for entry in group:
            image = os.fspath(entry["image"])
            volume = read_volume(image)
            if volume.shape != gt.shape or not np.allclose(volume.spacing[:2], gt.spacing[:2], rtol=1e-3):
                raise InputError(image, f"grid {volume.shape} at {volume.spacing} mm differs from its ground truth "
                                        f"{truth_path} ({gt.shape} at {gt.spacing} mm)")
            lung = lung_of(entry)
            sub = _subvolume(volume, index)
            fov = sub.fov_mask
            spacing = (float(volume.spacing[0]), float(volume.spacing[1]),
                       float(volume.header.slice_thickness or volume.spacing[2]))
            labels = _labels(entry)
            ident = {"subject": entry.get("subject"), "image": image, "kernel": entry["kernel"], **labels}
            for method in methods:
                hu = _harmonized_slices(method, entry, volume, sub, index)
                if hu is None:
                    not_supported.setdefault(method.name, []).append(image)
                    continue
                for k, z in enumerate(index):
                    mask = lung[z] if fov is None else lung[z] & fov[k]
                    gt_bio = lung_biomarkers(gt_sub[k], mask, spacing, min_lung_pixels)
                    bio = lung_biomarkers(hu[k], mask, spacing, min_lung_pixels)
                    row = {"method": method.name, **ident, "slice": int(z), "lung_pixels": int(mask.sum()),
                           **image_metrics(hu[k], gt_sub[k], None if fov is None else fov[k]), **bio,
                           **{f"gt_{key}": v for key, v in gt_bio.items()}}
                    row["abs_dlaa950_pct"] = abs(bio["laa950_pct"] - gt_bio["laa950_pct"])
                    row["abs_dperc15_hu"] = abs(bio["perc15_hu"] - gt_bio["perc15_hu"])
                    row["abs_dmass_g"] = abs(bio["mass_g"] - gt_bio["mass_g"])
                    slice_rows.append(row)
                if physics:
                    physics_rows.append({"method": method.name, **ident, "slices": len(index),
                                         **_physics(hu, volume.spacing, fov, truth_ns)})
            bar.update(1)


def run_truth_table(
    datalist: str | os.PathLike,
    out: str | os.PathLike,
    bundles: Sequence[str] | str = (),
    harmonized: Mapping[str, str | os.PathLike] | str | None = None,
    split: str | None = "test",
    slices: int = DEFAULT_SLICES,
    min_lung_pixels: int = MIN_LUNG_PIXELS,
    physics: bool = True,
    combat: bool = True,
    device: str | None = None,
    batch_size: int | None = None,
    trust_bundle: bool = False,
    spacing_policy: str = "resample",
    overwrite: bool = False,
    progress: bool = True,
    harmonizers: Mapping[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Paper 001's Table I form of "none", each method and ComBat on ``split`` of ``datalist`` (module docstring);
    writes the folder ``out`` atomically and returns the JSON document.

    Args:
        datalist: datalist JSON whose entries have ``kernel``, ``ground_truth`` and ``lung`` (``ctharmonize
            simulate``; force_family entries also ``rendition``, ``kernel_group``, ``dose``).
        out: output folder (refused if it exists, unless ``overwrite`` and it is an earlier ctharmonize output).
        bundles: bundle folders (comma-separated or a list) whose harmonizer maps to ``"ground_truth"``.
        harmonized: images harmonized to the GT already: ``NAME=PATH[,...]`` or {name: path} (or one PATH, method
            "harmonized"), each a ``harmonize-cohort`` folder or its manifest.csv (matched by input path).
        split: the split scored (None or "all": every entry).
        slices: slices per subject (evenly spaced among the lung slices); 0: all.
        min_lung_pixels: fewer GT lung pixels (in the FOV) on a slice: no biomarkers there.
        physics: measure d′, NPS and MTF per volume.
        combat: add the ComBat rows (skipped with a notice when neuroCombat is not installed).
        device, batch_size, trust_bundle, spacing_policy: how bundles are loaded (:func:`load_bundle_harmonizer`).
        progress: show a progress bar.
        harmonizers: {name: harmonizer object} (Python use, e.g. tests): each must map to ``"ground_truth"``.
        command: the command line recorded (default: the ``ctharmonize truth-table`` one of these arguments).
    """
    from tqdm.auto import tqdm

    from ctharmonize.cli import comma_list
    from ctharmonize.data import entry_paths
    from ctharmonize.evaluation.benchmark import _datalist_info
    from ctharmonize.evaluation.run import write_csv, write_json
    from ctharmonize.evaluation.truth_table_combat import combat_available, combat_to_truth
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output

    bundles = comma_list(bundles)
    command_line = _command_line({**locals(), "bundles": bundles})
    check_spacing_policy(spacing_policy)
    if int(slices) < 0:
        raise ConfigError(None, f"--slices must be >= 0 (0: all), got {slices}")
    if int(min_lung_pixels) < 1:
        raise ConfigError(None, f"--min_lung_pixels must be >= 1, got {min_lung_pixels}")
    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(None, f"--batch_size must be >= 1, got {batch_size}")
    entries, where = _entries(datalist, split)
    harmonized_paths = [] if not harmonized else (list(harmonized.values()) if isinstance(harmonized, Mapping)
                                                  else [p.split("=", 1)[-1] for p in comma_list(harmonized)])
    check_output(out, [datalist, *entry_paths(entries), *bundles, *harmonized_paths], overwrite)
    methods = _methods(bundles, harmonizers, harmonized, device, batch_size, trust_bundle, spacing_policy)
    for method in methods:  # every harmonized file is there before any work
        if method.images is not None:
            for e in entries:
                _harmonized_file(method, os.fspath(e["image"]))
    notices: list[str] = []
    if combat and not combat_available():
        notices.append("ComBat rows skipped: neuroCombat is not installed (pip install 'ctharmonize[combat]')")
        combat = False

    by_truth: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_truth.setdefault(os.fspath(e[TRUTH_DOMAIN]), []).append(e)
    slice_rows: list[dict[str, Any]] = []
    physics_rows: list[dict[str, Any]] = []
    truth_features: dict[tuple[str, int], dict[str, float]] = {}
    not_supported: dict[str, list[str]] = {}
    chosen_slices: dict[str, list[int]] = {}
    bar = tqdm(total=len(entries), desc="truth-table", unit="scan", disable=not progress)
    try:
        _score(by_truth, methods, int(slices), int(min_lung_pixels), physics, bar, slice_rows, physics_rows,
               truth_features, not_supported, chosen_slices)
    finally:
        bar.close()

    combat_info: dict[str, Any] = {"status": "not run" if not combat else "ok"}
    if combat:
        rows, combat_info = combat_to_truth([r for r in slice_rows if r["method"] == "none"], truth_features)
        slice_rows += rows
        if combat_info["status"] != "ok":
            notices.append(f"ComBat rows {combat_info['status']}")
        elif combat_info["left_out_batches"]:
            notices.append(f"ComBat left out batches with fewer than 2 slices: {', '.join(combat_info['left_out_batches'])}")
    for name, images in not_supported.items():
        notices.append(f"method {name!r} does not know the kernels of {len(images)} scans (left out of its rows): "
                       + ", ".join(sorted({e['kernel'] for e in entries if os.fspath(e['image']) in images})))
    for n in notices:
        log.warning("truth-table: %s", n)
    roles = [(m.name, m.role) for m in methods]
    if any(r["method"] == "combat" for r in slice_rows):
        roles.append(("combat", "feature harmonization (ComBat)"))
    summary = summarize_slices(slice_rows, roles)
    doc = {
        "command": command or command_line,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "datalist": _datalist_info(datalist), "split": split, "target": TRUTH_DOMAIN,
        "settings": {"slices_per_subject": int(slices), "min_lung_pixels": int(min_lung_pixels), "physics": physics,
                     "combat": combat, "hu_window": [-1024.0, 3072.0], "device": device},
        "definitions": DEFINITIONS,
        "methods": [{"name": m.name, "role": m.role, "source": m.source} for m in methods],
        "n_scans": len(entries), "n_subjects": len(by_truth),
        "n_slices": sum(1 for r in slice_rows if r["method"] == "none"),
        "slices": chosen_slices, "not_supported": not_supported, "combat": combat_info, "notices": notices,
        "rows": summary,
        "physics": summarize_physics(physics_rows, [TRUTH_DOMAIN, *(m.name for m in methods)]) if physics else [],
    }
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_csv(summary, tmp / "truth_table.csv")
        write_csv(slice_rows, tmp / "truth_table_slices.csv")
        if physics_rows:
            write_csv(physics_rows, tmp / "truth_table_physics.csv")
        write_json(doc, tmp / "truth_table.json")
        (tmp / "truth_table.md").write_text(truth_table_markdown(doc), encoding="utf-8")
    return doc


# --- Markdown ------------------------------------------------------------------------------------------------------

def _cell(row: Mapping[str, Any] | None, metric: str) -> str:
    if row is None:
        return "–"
    mean, sd = row.get(f"{metric}_mean"), row.get(f"{metric}_sd")
    digits = _DIGITS[metric]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if isinstance(mean, float) and math.isinf(mean):
        return "∞" if mean > 0 else "−∞"
    text = f"{mean:.{digits}f}"
    return text if sd is None or (isinstance(sd, float) and not math.isfinite(sd)) else f"{text} ± {sd:.{digits}f}"


def _head(name: str, role: str) -> str:
    return {"non-harmonized": "NH (none)", "feature harmonization (ComBat)": "ComBat"}.get(role, f"H: {name}")


def truth_table_markdown(doc: Mapping[str, Any]) -> str:
    """The Markdown report of a :func:`run_truth_table` document: Table I form (metric rows, one column per
    method), per-group tables, physics."""
    rows = doc["rows"]
    methods = list(dict.fromkeys((r["method"], r["role"]) for r in rows))
    info = doc["datalist"]
    lines = ["# Truth table: images against the noise-free ground truth (paper 001 Table I form)", "",
             f"Datalist `{info['path']}`" + (f" ({info['name']})" if info.get("name") else "") +
             f", split `{doc['split']}`: {doc['n_scans']} scans of {doc['n_subjects']} subjects, "
             f"{doc['n_slices']} slices (per subject {doc['settings']['slices_per_subject'] or 'all'} slices among "
             f"those with lung). {doc['date']}.", "", "Command:", "", "```bash", doc["command"], "```", "",
             "All metrics per 2-D slice, mean ± SD over slices. NH: the images as reconstructed; H: harmonized to "
             "`ground_truth`. Image metrics on [-1, 1] (HU [-1024, 3072]) inside the FOV (SSIM: 7×7 window, data "
             "range 2); biomarkers in the GT lung mask, |Δ| against the same measure on the GT slice (slices with "
             f"fewer than {doc['settings']['min_lung_pixels']} lung pixels left out); ComBat on [LAA-950, Perc15] "
             "with the GT as reference batch. Definitions: docs/evaluation.md and the JSON's `definitions`.", ""]
    for n in doc["notices"]:
        lines += [f"> {n}", ""]
    overall = {r["method"]: r for r in rows if r["group_by"] == "all"}
    lines += ["## Table I form (all slices)", "",
              "| metric | " + " | ".join(_head(m, role) for m, role in methods) + " |",
              "| --- | " + " | ".join("---" for _ in methods) + " |"]
    for metric in METRICS:
        lines.append(f"| {_LABELS[metric]} | " + " | ".join(_cell(overall.get(m), metric) for m, _ in methods) + " |")
    lines.append("| n slices (with lung) | " + " | ".join(
        f"{overall[m]['n_slices']} ({overall[m]['n_lung_slices']})" if m in overall else "–" for m, _ in methods)
        + " |")
    titles = {"kernel_group": "Per kernel group", "dose": "Per dose", "rendition_dose": "Per rendition × dose"}
    for by, title in titles.items():
        chosen = [r for r in rows if r["group_by"] == by]
        lines += ["", f"## {title}", "", "| group | method | n | " + " | ".join(_LABELS[m] for m in METRICS) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in METRICS) + " |"]
        for r in chosen:
            lines.append(f"| {r['group']} | {_head(r['method'], r['role'])} | {r['n_slices']} | "
                         + " | ".join(_cell(r, m) for m in METRICS) + " |")
    if doc["physics"]:
        lines += ["", "## Detectability and noise per volume (d′ NPWE, 4 mm 100 HU disk; NPS of image − GT)", "",
                  "| group | method | volumes | " + " | ".join(_LABELS[m] for m in PHYSICS_METRICS) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in PHYSICS_METRICS) + " |"]
        for r in doc["physics"]:
            name = "GT" if r["method"] == TRUTH_DOMAIN else ("NH (none)" if r["method"] == "none" else f"H: {r['method']}")
            lines.append(f"| {r['group'] if r['group_by'] != 'all' else 'all'} | {name} | {r['n_volumes']} | "
                         + " | ".join(_cell(r, m) + ("" if r[f"{m}_n"] in (0, r["n_volumes"]) else f" ({r[f'{m}_n']})")
                                      for m in PHYSICS_METRICS) + " |")
        lines += ["", "(k): measured on k of the volumes only. – : not measurable (see truth_table_physics.csv `status`); a GT-like image has NPS 0 and a d′ set "
                      "by the internal noise alone."]
    return "\n".join(lines) + "\n"


def _command_line(args: Mapping[str, Any]) -> str:
    """The ``ctharmonize truth-table`` command line of these :func:`run_truth_table` arguments (required ones and the
    others where they differ from their defaults; Python ``harmonizers`` cannot be given on a command line)."""
    words = ["ctharmonize", "truth-table"]
    for name, param in inspect.signature(run_truth_table).parameters.items():
        value = args[name]
        if name in ("command", "harmonizers") or (param.default is not inspect.Parameter.empty and
                                                   (value == param.default or (name == "bundles" and not value))):
            continue
        if name == "bundles":
            words += ["--bundles", ",".join(value)]
        elif name == "harmonized":
            text = value if isinstance(value, str) else ",".join(f"{k}={os.fspath(v)}" for k, v in value.items())
            words += ["--harmonized", text]
        elif isinstance(value, bool):
            words.append(f"--{name}" if value else f"--no{name}")
        else:
            words += [f"--{name}", os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    line = shlex.join(words)
    if args.get("harmonizers"):
        line += "  # + Python harmonizers: " + ", ".join(map(str, args["harmonizers"]))
    return line
