"""Paper 002 Table 3 image quality: PSNR, SSIM and uncentered NCC on images mapped to [0, 1].

Both images (HU) are clipped to :data:`WINDOW_HU` ([-1000, 900] HU, the range CVS-CT synthesizes) and
mapped linearly to [0, 1] (:func:`to_unit`); the measures are then taken on the whole volume:

* PSNR (eq. 10) = 10 log10(1 / MSE) dB, MAX = 1 (:func:`ctharmonize.metrics.psnr`, data range 1);
* SSIM (eq. 11) = mean SSIM of the axial slices (:func:`ctharmonize.metrics.ssim`: scikit-image, 7-pixel
  uniform window, data range 1, c1 = 0.01², c2 = 0.03²);
* NCC (eq. 12, :func:`ncc_uncentered`) = Σ x y / (√Σ x² √Σ y²): uncentered (cosine similarity), as the
  paper defines it, unlike the zero-mean :func:`ctharmonize.metrics.ncc` of the cohort evaluation.
"""

from __future__ import annotations

import numpy as np

from ctharmonize.metrics.image_similarity import psnr, ssim

__all__ = ["IMAGE_QUALITY", "WINDOW_HU", "image_quality", "ncc_uncentered", "to_unit"]

WINDOW_HU: tuple[float, float] = (-1000.0, 900.0)
IMAGE_QUALITY = ("psnr", "ssim", "ncc")


def to_unit(hu: np.ndarray, window: tuple[float, float] = WINDOW_HU) -> np.ndarray:
    """HU clipped to ``window`` and mapped linearly to [0, 1] (float64)."""
    lo, hi = float(window[0]), float(window[1])
    return (np.clip(np.asarray(hu, dtype=np.float64), lo, hi) - lo) / (hi - lo)


def ncc_uncentered(image: np.ndarray, reference: np.ndarray) -> float:
    """Σ x y / (√Σ x² √Σ y²) over all voxels (paper 002 eq. 12), in [0, 1] for non-negative images such as
    :func:`to_unit`'s; NaN when either image is all zero."""
    x = np.asarray(image, dtype=np.float64).ravel()
    y = np.asarray(reference, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"ncc_uncentered: shapes differ {np.shape(image)} vs {np.shape(reference)}")
    denom = np.sqrt(np.dot(x, x)) * np.sqrt(np.dot(y, y))
    return float(np.dot(x, y) / denom) if denom > 0 else float("nan")


def image_quality(image_hu: np.ndarray, reference_hu: np.ndarray,
                  window: tuple[float, float] = WINDOW_HU) -> dict[str, float]:
    """``psnr`` (dB), ``ssim`` and ``ncc`` of ``image_hu`` against ``reference_hu`` (same shape (Z, Y, X), HU)
    on the [0, 1] images of ``window``."""
    x, y = to_unit(image_hu, window), to_unit(reference_hu, window)
    return {"psnr": psnr(x, y, data_range=1.0, hu_window=None), "ssim": ssim(x, y, data_range=1.0, hu_window=None),
            "ncc": ncc_uncentered(x, y)}
