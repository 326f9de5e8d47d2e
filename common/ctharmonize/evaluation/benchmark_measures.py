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
* ``laa_gt_pct``: LAA-950 of the ground truth in the scan's lung mask (%).

Without a ground truth every measure is NaN; without tissue labels the region is labelled on the ground
truth by the body-composition backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ctharmonize.evaluation.pairing import Scan
from ctharmonize.metrics.emphysema import laa
from ctharmonize.metrics.image_similarity import psnr, ssim
from ctharmonize.metrics.noise_power import nps_peak_frequency

__all__ = ["NOISE_EROSION_MM", "NOISE_EROSION_PX", "NOISE_LABEL", "ScanTruth", "erosion_pixels", "image_measures",
           "noise_region"]

NOISE_LABEL = 5  # skeletal muscle (canonical tissue code)
NOISE_EROSION_PX = 2  # at least this many pixels ...
NOISE_EROSION_MM = 4.0  # ... and at least this many mm


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


class ScanTruth:
    """A subject's ground truth (HU) and noise region, read once for all its images."""

    def __init__(self, scan: Scan, backend: str = "threshold") -> None:
        from ctharmonize.io import read_volume

        path = scan.extra.get("ground_truth")
        self.truth: np.ndarray | None = None
        self.region: np.ndarray | None = None
        if path:
            volume = read_volume(path)
            self.truth = volume.array
            if scan.labels:
                from ctharmonize.io.label_map import read_label_map

                labels = read_label_map(scan.labels, like=volume)
            else:
                from ctharmonize.segmentation import body_composition

                labels = body_composition(volume, backend=backend)
            self.region = noise_region(labels, NOISE_LABEL, erosion_pixels(volume.spacing))


def image_measures(hu: np.ndarray, truth: ScanTruth, lung: np.ndarray, spacing: Sequence[float]) -> dict[str, Any]:
    """``noise_sd_hu``, ``nps_peak_lpcm``, ``ssim_gt``, ``psnr_gt_db`` and ``laa_gt_pct`` (in ``lung``) of one
    image (HU, (Z, Y, X)) of ``truth``'s subject; NaN where there is no ground truth."""
    out: dict[str, Any] = {k: math.nan for k in QUALITY_KEYS}
    out["laa_gt_pct"] = math.nan
    if truth.truth is None:
        return out
    if truth.truth.shape != np.shape(hu):
        raise ValueError(f"ground truth shape {truth.truth.shape} != image shape {np.shape(hu)}")
    out["laa_gt_pct"] = laa(truth.truth, lung) if np.any(lung) else math.nan
    out["ssim_gt"] = ssim(hu, truth.truth)
    out["psnr_gt_db"] = psnr(hu, truth.truth)
    if truth.region is not None and truth.region.any():
        noise = np.asarray(hu, np.float64) - truth.truth
        out["noise_sd_hu"] = float(noise[truth.region].std())
        out["nps_peak_lpcm"] = nps_peak_frequency(noise, spacing, truth.region)
    return out
