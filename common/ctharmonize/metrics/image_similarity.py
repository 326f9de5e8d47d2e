"""Image similarity in HU: PSNR, SSIM, NRMSE (scikit-image) and zero-mean NCC.

All functions take two arrays of the same shape in **HU** (e.g. (Z, Y, X)). Both are first
clipped to ``hu_window`` (default [-1024, 3072] HU, the networks' window), and ``data_range``
defaults to that window's width (4096 HU), so PSNR/SSIM values are comparable across images
and with the [-1, 1] network space (the same window scaled). ``mask`` (bool, same shape)
restricts PSNR/NRMSE/NCC to the voxels inside it; SSIM is the mean of the SSIM map inside it.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import (
    mean_squared_error,
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

__all__ = ["HU_WINDOW", "psnr", "ssim", "nrmse", "ncc"]

HU_WINDOW: tuple[float, float] = (-1024.0, 3072.0)


def _prepare(
    x: np.ndarray, y: np.ndarray, hu_window: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"image similarity: shapes differ {x.shape} vs {y.shape}")
    if hu_window is not None:
        x = np.clip(x, *hu_window)
        y = np.clip(y, *hu_window)
    return x, y


def _range(data_range: float | None, hu_window: tuple[float, float] | None, ref: np.ndarray) -> float:
    if data_range is not None:
        return float(data_range)
    if hu_window is not None:
        return float(hu_window[1] - hu_window[0])
    return float(ref.max() - ref.min())


def psnr(
    image: np.ndarray,
    reference: np.ndarray,
    data_range: float | None = None,
    hu_window: tuple[float, float] | None = HU_WINDOW,
    mask: np.ndarray | None = None,
) -> float:
    """PSNR in dB = 10 log10(data_range² / MSE) (skimage ``peak_signal_noise_ratio``); inf if identical."""
    x, y = _prepare(image, reference, hu_window)
    rng = _range(data_range, hu_window, y)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        x, y = x[m], y[m]
    if mean_squared_error(y, x) == 0:
        return float("inf")
    return float(peak_signal_noise_ratio(y, x, data_range=rng))


def ssim(
    image: np.ndarray,
    reference: np.ndarray,
    data_range: float | None = None,
    hu_window: tuple[float, float] | None = HU_WINDOW,
    mask: np.ndarray | None = None,
    per_slice: bool = True,
) -> float:
    """Mean SSIM (skimage ``structural_similarity``, 7-pixel uniform window).

    With ``per_slice`` (default, as paper 001 evaluates slices) the SSIM map is computed on each
    axial slice (last two axes) in 2-D and skimage's mean SSIM of the slices is averaged; otherwise
    in N-D. With ``mask``, the mean of the SSIM map over the voxels inside it.
    """
    x, y = _prepare(image, reference, hu_window)
    rng = _range(data_range, hu_window, y)
    pairs = [(y[k], x[k]) for k in range(x.shape[0])] if per_slice and x.ndim == 3 else [(y, x)]
    results = [structural_similarity(a, b, data_range=rng, full=True) for a, b in pairs]
    if mask is None:  # skimage's mean SSIM (borders of half a window excluded), averaged over slices
        return float(np.mean([r[0] for r in results]))
    smap = np.stack([r[1] for r in results]) if len(results) > 1 else results[0][1].reshape(x.shape)
    return float(smap.reshape(x.shape)[np.asarray(mask, dtype=bool)].mean())


def nrmse(
    image: np.ndarray,
    reference: np.ndarray,
    normalization: str = "euclidean",
    hu_window: tuple[float, float] | None = HU_WINDOW,
    mask: np.ndarray | None = None,
) -> float:
    """NRMSE (skimage ``normalized_root_mse``): RMSE / norm of the reference.

    ``normalization``: "euclidean" (sqrt(mean(ref²)), skimage's default), "min-max" or "mean".
    A fraction, not %; multiply by 100 for paper 001's table.
    """
    x, y = _prepare(image, reference, hu_window)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        x, y = x[m], y[m]
    return float(normalized_root_mse(y, x, normalization=normalization))


def ncc(
    image: np.ndarray,
    reference: np.ndarray,
    hu_window: tuple[float, float] | None = HU_WINDOW,
    mask: np.ndarray | None = None,
) -> float:
    """Zero-mean normalized cross-correlation (Pearson r of the voxel values), in [-1, 1].

    ``sum((x - mean x)(y - mean y)) / sqrt(sum((x - mean x)²) sum((y - mean y)²))``. Zero-mean,
    unlike paper 002's eq. 12, because HU have an arbitrary offset (air = -1000) that would
    otherwise dominate. NaN when either image is constant. Neither MONAI nor scikit-image has it.
    """
    x, y = _prepare(image, reference, hu_window)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        x, y = x[m], y[m]
    xc = x.ravel() - x.mean()
    yc = y.ravel() - y.mean()
    denom = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    return float(np.dot(xc, yc) / denom) if denom > 0 else float("nan")
