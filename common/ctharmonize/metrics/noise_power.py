"""Noise power spectrum (NPS) of CT noise images: 2-D NPS, its radial average and peak frequency.

Input is a noise image in **HU** (image minus its noise-free ground truth, or a difference of two
repeated scans), (Y, X) or a stack (Z, Y, X) of slices or ROIs; ``spacing`` is (sx, sy) in mm
(sx along the last axis). With a ``mask`` only the masked pixels of each slice count: their mean is
removed, everything else is set to 0, and the spectrum is normalized by the number of masked
pixels, so that for any mask

    NPS(u, v) = sx·sy · Σ_k |DFT2(n_k · m_k)|² / Σ_k N_k            (HU² mm²)

and, by Parseval, Σ_uv NPS(u, v) · du · dv = Σ_k Σ_xy (n_k m_k)² / Σ_k N_k: the integral of the
NPS over the frequency plane equals the (pooled, per-slice mean removed) noise variance in HU².
Without a mask each slice is one full ROI (the classical ensemble estimate). White noise of
variance σ² gives a flat NPS of σ² · sx · sy. A mask smooths the spectrum (convolution with the
mask's own spectrum) but keeps its integral; compare spectra measured in the same region.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["noise_power_spectrum", "nps_peak_frequency", "radial_nps"]


def _stack(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"noise_power_spectrum: expected (Y, X) or (Z, Y, X), got shape {a.shape}")
    return a


def noise_power_spectrum(
    noise: np.ndarray, spacing: Sequence[float], mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D NPS (HU² mm²) of noise slices (Y, X) or (Z, Y, X) in HU, pooled over slices.

    Args:
        noise: noise image(s) in HU.
        spacing: (sx, sy) pixel spacing in mm (sx along the last axis); a third value is ignored.
        mask: optional bool array of ``noise``'s shape: the region measured (see the module docstring).

    Returns:
        ``(nps, fy, fx)``: nps (Y, X) in numpy FFT order (``np.fft.fftshift`` to centre it), fy (Y,)
        and fx (X,) in cycles/mm. All NaN when the mask is empty.
    """
    n = _stack(noise)
    sx, sy = float(spacing[0]), float(spacing[1])
    m = np.ones(n.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.ndim == 2:
        m = m[None]
    if m.shape != n.shape:
        raise ValueError(f"noise_power_spectrum: mask shape {np.shape(mask)} != noise shape {np.shape(noise)}")
    fy = np.fft.fftfreq(n.shape[1], d=sy)
    fx = np.fft.fftfreq(n.shape[2], d=sx)
    counts = m.sum(axis=(1, 2))
    total = int(counts.sum())
    if total == 0:
        return np.full(n.shape[1:], np.nan), fy, fx
    means = np.where(counts > 0, (n * m).sum(axis=(1, 2)) / np.maximum(counts, 1), 0.0)
    centred = np.where(m, n - means[:, None, None], 0.0)
    power = np.zeros(n.shape[1:], dtype=np.float64)
    for k in np.flatnonzero(counts):  # one slice at a time: bounded memory at 512²
        power += np.abs(np.fft.fft2(centred[k])) ** 2
    return power * sx * sy / total, fy, fx


def radial_nps(nps: np.ndarray, fy: np.ndarray, fx: np.ndarray,
               ring_width: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radial average of a 2-D NPS in rings of width ``ring_width`` (cycles/mm; default the grid's
    df = max(|fx[1]|, |fy[1]|)).

    Ring i holds the frequencies with i·w <= |f| < (i + 1)·w (with w = df: the DC term alone on a square
    grid); its frequency is the ring centre (i + 0.5)·w. Returns ``(f in lp/cm, mean NPS per ring in
    HU² mm²)`` for the non-empty rings up to the corner of the spectrum.
    """
    dfx = abs(float(fx[1] - fx[0])) if fx.size > 1 else 0.0
    dfy = abs(float(fy[1] - fy[0])) if fy.size > 1 else 0.0
    width = float(ring_width) if ring_width is not None else max(dfx, dfy)
    if not width > 0:
        raise ValueError("radial_nps: need at least 2 frequencies along one axis, or a ring_width > 0")
    # integer frequency indices scaled to ring units: exact on the axes when the rings are the grid's df
    kx = np.rint(fx / dfx) * (dfx / width) if dfx else np.zeros_like(fx)
    ky = np.rint(fy / dfy) * (dfy / width) if dfy else np.zeros_like(fy)
    ring = np.floor(np.hypot(ky[:, None], kx[None, :])).astype(np.int64).ravel()
    counts = np.bincount(ring)
    sums = np.bincount(ring, weights=np.asarray(nps, dtype=np.float64).ravel())
    ok = counts > 0
    return (np.flatnonzero(ok) + 0.5) * width * 10.0, sums[ok] / counts[ok]


def nps_peak_frequency(noise: np.ndarray, spacing: Sequence[float], mask: np.ndarray | None = None,
                       rings: int = 20) -> float:
    """Frequency (lp/cm) of the maximum of the radially averaged NPS of ``noise`` (HU) in ``mask``.

    Rings ``rings`` to the Nyquist frequency f_N = 1 / (2 max(sx, sy)) (width f_N / rings, at least the
    grid's df: coarse enough that each ring pools many spectral samples), searched up to f_N; the ring with
    the largest mean NPS is refined by the vertex of the parabola through it and its two neighbours (when
    both exist; at most half a ring from its centre). NaN for an empty mask.
    """
    nps, fy, fx = noise_power_spectrum(noise, spacing, mask)
    nyquist = 0.5 / max(float(spacing[0]), float(spacing[1]))
    df = max(abs(float(fx[1] - fx[0])) if fx.size > 1 else 0.0, abs(float(fy[1] - fy[0])) if fy.size > 1 else 0.0)
    f, values = radial_nps(nps, fy, fx, max(df, nyquist / int(rings)))
    keep = f <= 10.0 * nyquist
    f, values = f[keep], values[keep]
    if not np.isfinite(values).any():
        return float("nan")
    i = int(np.nanargmax(values))
    if 0 < i < values.size - 1:
        a, b, c = values[i - 1], values[i], values[i + 1]
        curvature = a - 2.0 * b + c
        if curvature < 0:
            shift = 0.5 * (a - c) / curvature
            return float(f[i] + np.clip(shift, -0.5, 0.5) * (f[i + 1] - f[i - 1]) / 2.0)
    return float(f[i])
