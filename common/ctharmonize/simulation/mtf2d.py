"""The 64 × 64 MTF2D map of paper 001 (the harmonizer's conditioning input) from a 1-D radial MTF.

Layout (spec papers_001_002 §1.2, §7.4): a rotationally symmetric map ``MTF2D[i, j] = MTF(√(v_i² + u_j²))``
on the fftshift-centred grid of the image's own frequency band: index ``k`` is the frequency
``(k − size//2) / (size · spacing)`` cycles/mm, so DC is at (32, 32), the row/column 0 is −Nyquist and
the map covers [−Nyquist, Nyquist) like ``fftshift(fft2(slice))`` does (see
:mod:`ctharmonize.networks.blocks.frequency_grid`). Values are unitless, 1 at DC (above 1 where a
kernel boosts mid frequencies). Frequencies are in lp/cm like :class:`~ctharmonize.simulation.KernelSpec`
(1 cycle/mm = 10 lp/cm).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctharmonize.simulation.kernels import KERNELS, KernelSpec

__all__ = ["MTF2D_SIZE", "centered_frequencies", "kernel_mtf2d", "kernel_mtf_profile", "mtf2d_from_profile",
           "radial_frequency_map"]

MTF2D_SIZE = 64


def _spacings(pixel_spacing: float | Sequence[float]) -> tuple[float, float]:
    """(row, column) spacing in mm from a scalar or a (row, column) pair."""
    if np.isscalar(pixel_spacing):
        dy = dx = float(pixel_spacing)  # type: ignore[arg-type]
    else:
        values = [float(v) for v in pixel_spacing]  # type: ignore[union-attr]
        if len(values) != 2:
            raise ValueError("pixel_spacing must be a number or a (row, column) pair in mm")
        dy, dx = values
    if not (dy > 0 and dx > 0 and np.isfinite(dy) and np.isfinite(dx)):
        raise ValueError(f"pixel spacing must be positive mm, got {pixel_spacing!r}")
    return dy, dx


def centered_frequencies(size: int, spacing_mm: float) -> np.ndarray:
    """The ``size`` frequencies (lp/cm) of a centred grid: ``(k − size//2) / (size · spacing) · 10``."""
    return (np.arange(size) - size // 2) / (size * float(spacing_mm)) * 10.0


def radial_frequency_map(pixel_spacing: float | Sequence[float], size: int = MTF2D_SIZE) -> np.ndarray:
    """(size, size) radial frequency √(v² + u²) in lp/cm on the centred grid (0 at (size//2, size//2))."""
    dy, dx = _spacings(pixel_spacing)
    v = centered_frequencies(size, dy)[:, None]
    u = centered_frequencies(size, dx)[None, :]
    return np.sqrt(v**2 + u**2)


def _kernel(kernel: str | KernelSpec) -> KernelSpec:
    if isinstance(kernel, KernelSpec):
        return kernel
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel domain {kernel!r}; known: {', '.join(sorted(KERNELS))}")
    return KERNELS[kernel]


def kernel_mtf2d(kernel: str | KernelSpec, pixel_spacing: float | Sequence[float],
                 size: int = MTF2D_SIZE) -> np.ndarray:
    """The MTF2D map (size, size) float32 of a simulator kernel (domain name or spec) at ``pixel_spacing`` mm.

    ``torch.from_numpy(m)[None, None]`` is the harmonizer's (1, 1, 64, 64) input. The kernel's
    design MTF is evaluated at each radial frequency (no interpolation).
    """
    return _kernel(kernel).mtf(radial_frequency_map(pixel_spacing, size)).astype(np.float32)


def kernel_mtf_profile(kernel: str | KernelSpec, pixel_spacing: float, n: int = MTF2D_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Paper 001's "64 frequency samples": (frequencies lp/cm = ``linspace(0, Nyquist, n)``, MTF values)."""
    dy, _ = _spacings(pixel_spacing)
    freqs = np.linspace(0.0, 10.0 / (2.0 * dy), n)
    return freqs, _kernel(kernel).mtf(freqs)


def mtf2d_from_profile(freqs_lp_cm: Sequence[float] | np.ndarray, mtf: Sequence[float] | np.ndarray,
                       pixel_spacing: float | Sequence[float], size: int = MTF2D_SIZE) -> np.ndarray:
    """MTF2D (size, size) float32 from a sampled 1-D MTF (e.g. measured at the skin–air edge).

    Linear interpolation in radial frequency; beyond the last sample (the grid's corners reach
    √2 · Nyquist) the last value is held. ``freqs_lp_cm`` must increase and start at 0; the map is
    divided by the value at 0 so DC is exactly 1.
    """
    f = np.asarray(freqs_lp_cm, dtype=float)
    m = np.asarray(mtf, dtype=float)
    if f.ndim != 1 or f.shape != m.shape or f.size < 2:
        raise ValueError("freqs and mtf must be 1-D arrays of the same length (>= 2)")
    if f[0] != 0.0 or np.any(np.diff(f) <= 0):
        raise ValueError("freqs must start at 0 and increase")
    if not np.isfinite(m).all() or m[0] <= 0:
        raise ValueError("mtf must be finite with a positive value at 0")
    return (np.interp(radial_frequency_map(pixel_spacing, size), f, m) / m[0]).astype(np.float32)
