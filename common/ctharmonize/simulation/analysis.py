"""Image-quality measurements used to validate the simulator: edge MTF, NPS, ROI noise, LAA-950."""

from __future__ import annotations

import numpy as np

__all__ = ["edge_mtf", "noise_power_spectrum", "roi_noise", "laa950", "disk_phantom"]


def disk_phantom(n: int, dx: float, radius_mm: float, inside_hu: float, outside_hu: float,
                 supersample: int = 8) -> np.ndarray:
    """(n, n) float32 HU image of a centred disk with exact partial-volume edge pixels."""
    s = supersample
    c = (np.arange(n * s) - (n * s - 1) / 2) * dx / s
    inside = (c[:, None] ** 2 + c[None, :] ** 2) <= radius_mm ** 2
    frac = inside.reshape(n, s, n, s).mean(axis=(1, 3))
    return (outside_hu + frac * (inside_hu - outside_hu)).astype(np.float32)


def edge_mtf(image: np.ndarray, dx: float, radius_mm: float, bin_mm: float = 0.1,
             window_mm: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """MTF of a centred-disk image by the circular-edge method.

    Pixels are binned by radius (oversampled edge spread function), differentiated to the line
    spread function, Hann-windowed around the edge and Fourier transformed.

    Args:
        image: (Y, X) or (Z, Y, X) HU image(s) of a disk centred on the grid centre.
        dx: pixel spacing (mm). radius_mm: disk radius (mm).
    Returns:
        (frequencies in lp/cm, MTF normalised to 1 at f = 0).
    """
    img = np.asarray(image, float)
    if img.ndim == 2:
        img = img[None]
    n = img.shape[-1]
    c = (np.arange(n) - (n - 1) / 2) * dx
    r = np.hypot(c[:, None], c[None, :])
    sel = np.abs(r - radius_mm) < window_mm
    edges = np.arange(radius_mm - window_mm, radius_mm + window_mm + bin_mm, bin_mm)
    idx = np.digitize(r[sel], edges) - 1
    vals = img[:, sel].mean(axis=0)
    nb = edges.size - 1
    counts = np.bincount(idx, minlength=nb)[:nb]
    sums = np.bincount(idx, weights=vals, minlength=nb)[:nb]
    centres = 0.5 * (edges[:-1] + edges[1:])
    ok = counts > 0
    esf = np.interp(centres, centres[ok], sums[ok] / counts[ok])
    lsf = np.gradient(esf, bin_mm)
    lsf *= np.hanning(lsf.size)
    spec = np.abs(np.fft.rfft(lsf, n=8 * lsf.size))
    f = np.fft.rfftfreq(8 * lsf.size, d=bin_mm) * 10.0  # cycles/mm -> lp/cm
    return f, spec / spec[0]


def noise_power_spectrum(noise: np.ndarray, dx: float, roi: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged 2-D NPS (HU^2 mm^2) of zero-mean noise images (Z, Y, X) from central ROIs.

    Four ``roi``² ROIs around the image centre of every slice, through
    :mod:`ctharmonize.metrics.noise_power`. Returns (frequencies in lp/cm, NPS).
    """
    img = np.asarray(noise, float)
    if img.ndim == 2:
        img = img[None]
    n = img.shape[-1]
    half = roi // 2
    rois = []
    for cy in (n // 2 - half, n // 2 + half):
        for cx in (n // 2 - half, n // 2 + half):
            rois.append(img[:, cy - half:cy + half, cx - half:cx + half])
    from ctharmonize.metrics.noise_power import noise_power_spectrum as nps_2d
    from ctharmonize.metrics.noise_power import radial_nps

    return radial_nps(*nps_2d(np.concatenate(rois, axis=0), (dx, dx)))


def roi_noise(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation (HU) of ``image - reference`` inside ``mask``."""
    d = (np.asarray(image, float) - np.asarray(reference, float))[np.asarray(mask, bool)]
    return float(d.std())


def laa950(hu: np.ndarray, lung: np.ndarray, threshold: float = -950.0) -> float:
    """Percentage of lung voxels (``lung > 0``) below ``threshold`` HU."""
    m = np.asarray(lung) > 0
    return float(100.0 * np.count_nonzero(np.asarray(hu)[m] < threshold) / max(np.count_nonzero(m), 1))
