"""Per-scan measures the benchmark adds to the cohort evaluation: noise, NPS and agreement with the ground truth.

Simulated datalists carry each subject's noise-free ``ground_truth`` (HU) and tissue ``labels``, so the
noise of any image of the subject is ``image - ground_truth``. It is measured where the truth is flat:
skeletal muscle (label 5) eroded in-plane by max(2 pixels, 4 mm) (away from partial-volume edges and
the edge response of the kernel and of a harmonizer working on a coarser grid: at 0.7 mm pixels a
2-pixel margin left the baseline's edge residue in the "noise" as a spurious low-frequency NPS peak).
All images in HU; spacing (sx, sy, sz) in mm.

* ``noise_sd_hu``: SD (ddof 0) of the noise in that region.
* ``nps_peak_lpcm``: peak frequency of its radially averaged 2-D NPS (:mod:`ctharmonize.metrics.noise_power`).
* ``ssim_gt`` / ``psnr_gt_db``: SSIM / PSNR against the ground truth (:mod:`ctharmonize.metrics.image_similarity`,
  HU window [-1024, 3072], data range 4096 HU, as the cohort evaluation's similarity).
* ``laa_gt_pct``: LAA-950 of the ground truth in the scan's lung mask (%); ``gt_perc15_hu`` / ``gt_mean_hu``: its
  Perc15 and mean lung density there (HU, :func:`ctharmonize.metrics.emphysema.emphysema_measures`, as the cohort
  evaluation measures every image).

Without a ground truth every measure is NaN; without tissue labels the region is labelled on the ground
truth by the body-composition backend.

Image-quality physics of paper 001 (:func:`physics_measures`, :mod:`ctharmonize.physics`), for any image:

* ``mtf50_lpcm``: MTF50 (lp/cm) of the MTF measured at the skin–air edge
  (:func:`~ctharmonize.physics.skin_air_mtf` with its defaults and the image's FOV mask); NaN when the tool
  cannot measure it (InputError: no body, no air, too few usable edge profiles) or the MTF stays above 0.5
  up to twice the Nyquist frequency (a sharp kernel on a coarse grid).
* ``dprime_npwe``: d′ of the NPWE observer (:func:`~ctharmonize.physics.detectability`, :data:`OBSERVER`: 4 mm
  disk, 100 HU, eye filter, α = 1e-8) from that MTF and the NPS of :func:`scan_nps`: with a ground truth,
  :func:`~ctharmonize.physics.measure_nps` of ``image - ground_truth`` (``reference`` mode) in square ROIs inside
  :func:`flat_region` (the same ROIs for every image of a subject); without one, its single-image uniform-ROI
  mode. ROI side: the first of :data:`NPS_ROI_SIZES` pixels that yields enough ROIs. NaN when the MTF or the
  NPS cannot be measured.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ctharmonize.errors import InputError
from ctharmonize.evaluation.pairing import Scan
from ctharmonize.metrics.emphysema import emphysema_measures, laa
from ctharmonize.metrics.image_similarity import psnr, ssim
from ctharmonize.metrics.noise_power import nps_peak_frequency
from ctharmonize.physics import NoisePower, ObserverModel, detectability, measure_nps, skin_air_mtf

__all__ = ["FLAT_TOLERANCE_HU", "NOISE_EROSION_MM", "NOISE_EROSION_PX", "NOISE_LABEL", "NPS_ROI_SIZES", "OBSERVER",
           "PHYSICS_KEYS", "ScanTruth", "erosion_pixels", "flat_region", "image_measures", "noise_region",
           "physics_measures", "scan_nps"]

NOISE_LABEL = 5  # skeletal muscle (canonical tissue code)
NOISE_EROSION_PX = 2  # at least this many pixels ...
NOISE_EROSION_MM = 4.0  # ... and at least this many mm
FLAT_TOLERANCE_HU = 1.0  # ground truth "flat": max - min within the erosion neighbourhood
NPS_ROI_SIZES = (32, 16, 8)  # NPS ROI sides (pixels) tried in turn for d'
OBSERVER = ObserverModel()  # paper 001's task: 4 mm disk, 100 HU; NPWE with eye filter
PHYSICS_KEYS = ("mtf50_lpcm", "dprime_npwe")


def erosion_pixels(spacing: Sequence[float]) -> int:
    """In-plane erosion of the noise region: max(:data:`NOISE_EROSION_PX`, ceil(:data:`NOISE_EROSION_MM` / pixel))
    with the finer of the two in-plane spacings (mm)."""
    return max(NOISE_EROSION_PX, math.ceil(NOISE_EROSION_MM / min(float(spacing[0]), float(spacing[1])) - 1e-9))


QUALITY_KEYS = ("noise_sd_hu", "nps_peak_lpcm", "ssim_gt", "psnr_gt_db")


def noise_region(labels: np.ndarray, label: int = NOISE_LABEL, erosion_px: int = NOISE_EROSION_PX) -> np.ndarray:
    """Bool (Z, Y, X): voxels of ``label`` eroded in-plane (3 x 3 square, ``erosion_px`` times) on each slice."""
    mask = np.asarray(labels) == label
    if erosion_px <= 0:
        return mask
    return ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3), bool), iterations=int(erosion_px))


def flat_region(truth: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Bool (Z, Y, X): voxels of the ground truth's body where the truth is flat: max - min of the truth over the
    in-plane (2r + 1)² square around the voxel (r = :func:`erosion_pixels`) at most :data:`FLAT_TOLERANCE_HU`. There
    ``image - truth`` is noise (no edge, and none within max(2 px, 4 mm) to carry the kernel's blur). Body:
    :func:`~ctharmonize.segmentation.body_mask.body_mask` of the truth."""
    from ctharmonize.segmentation.body_mask import body_mask, smooth_hu

    g = np.asarray(truth, np.float32)
    r = erosion_pixels(spacing)
    size = (1, 2 * r + 1, 2 * r + 1)
    flat = ndimage.maximum_filter(g, size=size) - ndimage.minimum_filter(g, size=size) <= FLAT_TOLERANCE_HU
    return flat & body_mask(smooth_hu(g, 1.0), tuple(float(v) for v in spacing))


class ScanTruth:
    """A subject's ground truth (HU) and noise region, read once for all its images."""

    def __init__(self, scan: Scan, backend: str = "threshold") -> None:
        from ctharmonize.io import read_volume

        path = scan.extra.get("ground_truth")
        self.truth: np.ndarray | None = None
        self.region: np.ndarray | None = None
        self.spacing: tuple[float, ...] | None = None
        if path:
            volume = read_volume(path)
            self.truth = volume.array
            self.spacing = tuple(float(v) for v in volume.spacing)
            if scan.labels:
                from ctharmonize.io.label_map import read_label_map

                labels = read_label_map(scan.labels, like=volume)
            else:
                from ctharmonize.segmentation import body_composition

                labels = body_composition(volume, backend=backend)
            self.region = noise_region(labels, NOISE_LABEL, erosion_pixels(volume.spacing))

    @functools.cached_property
    def flat(self) -> np.ndarray | None:
        """:func:`flat_region` of the ground truth (None without one); computed once, on first use."""
        return None if self.truth is None else flat_region(self.truth, self.spacing)


def image_measures(hu: np.ndarray, truth: ScanTruth, lung: np.ndarray, spacing: Sequence[float]) -> dict[str, Any]:
    """``noise_sd_hu``, ``nps_peak_lpcm``, ``ssim_gt``, ``psnr_gt_db``, ``laa_gt_pct``, ``gt_perc15_hu`` and
    ``gt_mean_hu`` (the last three in ``lung``) of one image (HU, (Z, Y, X)) of ``truth``'s subject; NaN where there
    is no ground truth."""
    out: dict[str, Any] = {k: math.nan for k in (*QUALITY_KEYS, "laa_gt_pct", "gt_perc15_hu", "gt_mean_hu")}
    if truth.truth is None:
        return out
    if truth.truth.shape != np.shape(hu):
        raise ValueError(f"ground truth shape {truth.truth.shape} != image shape {np.shape(hu)}")
    if np.any(lung):
        out["laa_gt_pct"] = laa(truth.truth, lung)
        both = emphysema_measures(truth.truth, lung, spacing)["both"]
        out["gt_perc15_hu"], out["gt_mean_hu"] = float(both["perc15_hu"]), float(both["mean_hu"])
    out["ssim_gt"] = ssim(hu, truth.truth)
    out["psnr_gt_db"] = psnr(hu, truth.truth)
    if truth.region is not None and truth.region.any():
        noise = np.asarray(hu, np.float64) - truth.truth
        out["noise_sd_hu"] = float(noise[truth.region].std())
        out["nps_peak_lpcm"] = nps_peak_frequency(noise, spacing, truth.region)
    return out


def scan_nps(hu: np.ndarray, spacing: Sequence[float], fov_mask: np.ndarray | None,
             truth: ScanTruth) -> NoisePower | None:
    """The NPS of one image for d′ (module docstring): ``measure_nps`` of ``hu - truth`` in :func:`flat_region`
    (with a ground truth) or of the image's uniform ROIs (without), ROI side the first of :data:`NPS_ROI_SIZES` that
    fits enough ROIs; None when none does."""
    if truth.truth is not None and truth.truth.shape != np.shape(hu):
        raise ValueError(f"ground truth shape {truth.truth.shape} != image shape {np.shape(hu)}")
    extra: dict[str, Any] = {} if truth.truth is None else {"body": truth.flat, "reference": truth.truth}
    for size in NPS_ROI_SIZES:
        if size > min(np.shape(hu)[-2:]):
            continue
        try:
            return measure_nps(hu, spacing, fov_mask=fov_mask, roi_size=size, **extra)
        except InputError:
            continue
    return None


def physics_measures(hu: np.ndarray, spacing: Sequence[float], fov_mask: np.ndarray | None,
                     truth: ScanTruth) -> dict[str, float]:
    """``mtf50_lpcm`` and ``dprime_npwe`` of one image (HU, (Z, Y, X)) of ``truth``'s subject (module docstring);
    NaN where the skin–air MTF (an InputError of the tool) or the NPS cannot be measured."""
    out = dict.fromkeys(PHYSICS_KEYS, math.nan)
    try:
        edge = skin_air_mtf(hu, spacing, fov_mask=fov_mask)
    except InputError:
        return out
    out["mtf50_lpcm"] = float(edge.mtf50)
    noise = scan_nps(hu, spacing, fov_mask, truth)
    if noise is not None:
        out["dprime_npwe"] = float(detectability(edge, noise, OBSERVER).dprime_npwe)
    return out
