"""Parallel-beam projection and back-projection evaluated in the Fourier domain.

By the central-slice theorem the 1-D Fourier transform of a projection at angle theta is the
2-D Fourier transform of the image along a line through the origin. Both directions are
non-uniform FFTs (finufft): the image -> polar-frequency samples (type 2) and filtered
polar-frequency samples -> image (type 1). This is the exact Radon transform of the
band-limited image and exact filtered back-projection, at O(N^2 log N) per slice instead of
O(N^3) for ray tracing.

Geometry: pixel (row j, column i) of an N x N grid with spacing ``dx`` mm sits at
``((i - (N-1)/2) dx, (j - (N-1)/2) dx)`` relative to the rotation centre. Detector bin m of
``n_det`` bins with pitch ``dt`` mm is at ``t = (m - n_det/2) dt``; view v has angle
``theta = pi v / n_views``; the ray coordinate is ``t = x cos(theta) + y sin(theta)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ParallelGeometry", "project", "backproject_filtered"]


class ParallelGeometry:
    """Views and detector sampling of a parallel-beam scan over 180 degrees."""

    def __init__(self, n_views: int, n_det: int, det_pitch_mm: float):
        self.n_views, self.n_det, self.dt = int(n_views), int(n_det), float(det_pitch_mm)
        if self.n_det % 2:
            self.n_det += 1
        self.theta = np.pi * np.arange(self.n_views) / self.n_views

    @property
    def t(self) -> np.ndarray:
        """Detector bin centres (mm)."""
        return (np.arange(self.n_det) - self.n_det / 2) * self.dt


def _nufft():
    import finufft

    return finufft


def _threads(nthreads: int | None) -> dict:
    """finufft keyword for the thread count (default: torch's / OMP setting)."""
    if nthreads is None:
        import os

        env = os.environ.get("OMP_NUM_THREADS")
        nthreads = int(env) if env and env.isdigit() else min(os.cpu_count() or 1, 4)
    return {"nthreads": int(nthreads)}


def _polar_points(theta: np.ndarray, rho: np.ndarray, dx: float) -> tuple[np.ndarray, np.ndarray]:
    """finufft points (rows = y, columns = x) for frequencies ``rho`` (cycles/mm) on each view."""
    wy = (2 * np.pi * dx) * np.outer(np.sin(theta), rho).ravel()
    wx = (2 * np.pi * dx) * np.outer(np.cos(theta), rho).ravel()
    wrap = (np.mod(wy + np.pi, 2 * np.pi) - np.pi, np.mod(wx + np.pi, 2 * np.pi) - np.pi)
    return wrap[0].astype(np.float32), wrap[1].astype(np.float32)


def _half_pixel_phase(theta: np.ndarray, rho: np.ndarray, dx: float, n: int) -> np.ndarray:
    """Phase that moves finufft's mode grid (index - n/2) to pixel centres (index - (n-1)/2)."""
    shift = 0.5 * dx if n % 2 == 0 else 0.0
    return np.exp(-2j * np.pi * shift * np.outer(np.sin(theta) + np.cos(theta), rho)).astype(np.complex64)


def project(mu: np.ndarray, dx: float, geom: ParallelGeometry, band: np.ndarray | None = None,
            nthreads: int | None = None) -> np.ndarray:
    """Line integrals of ``mu`` (Z, N, N) (1/mm) -> sinogram (Z, n_views, n_det) (unitless).

    Args:
        mu: attenuation per slice on an N x N grid with pixel spacing ``dx`` mm.
        band: optional taper applied to the object spectrum, sampled at ``rfreq`` (see code);
            None = a raised-cosine roll-off over the top 20% of the grid's Nyquist band.
    """
    mu = np.asarray(mu)
    z, n = mu.shape[0], mu.shape[-1]
    rho = np.fft.fftfreq(geom.n_det, d=geom.dt)  # cycles/mm, FFT order
    nyq = 0.5 / dx
    keep = np.abs(rho) < nyq
    r = rho[keep]
    if band is None:
        x = np.clip((np.abs(r) / nyq - 0.8) / 0.2, 0.0, 1.0)
        band = 0.5 * (1 + np.cos(np.pi * x))
    wy, wx = _polar_points(geom.theta, r, dx)
    coeff = _nufft().nufft2d2(wy, wx, mu.astype(np.complex64), eps=1e-4, **_threads(nthreads))  # (Z, V*K)
    coeff = coeff.reshape(z, geom.n_views, r.size)
    coeff *= _half_pixel_phase(geom.theta, r, dx, n)[None] * np.float32(dx * dx) * band.astype(np.float32)[None]
    spec = np.zeros((z, geom.n_views, geom.n_det), np.complex64)
    spec[:, :, keep] = coeff
    sino = np.fft.ifft(spec, axis=-1).real.astype(np.float32) / np.float32(geom.dt)
    return np.fft.fftshift(sino, axes=-1)


def backproject_filtered(sino: np.ndarray, geom: ParallelGeometry, filters: list[np.ndarray], n: int, dx: float,
                         pad_factor: int = 2, nthreads: int | None = None) -> list[np.ndarray]:
    """Filtered back-projection of ``sino`` (Z, n_views, n_det) with each 1-D filter -> images (Z, n, n).

    Args:
        filters: callables' samples: each a function of frequency (cycles/mm) given as an array
            aligned with ``np.fft.rfftfreq(pad_factor * n_det, dt)`` -- the full filter incl. ramp.
        n, dx: output grid size and pixel spacing (mm). Frequencies above the output Nyquist
            alias, exactly as point-sampling the continuous reconstruction would.
    Returns:
        one (Z, n, n) float32 image per filter, in the units of ``sino`` per mm.
    """
    z = sino.shape[0]
    length = pad_factor * geom.n_det
    padded = np.zeros((z, geom.n_views, length), np.float32)
    off = (length - geom.n_det) // 2
    padded[:, :, off:off + geom.n_det] = sino
    spec = (np.fft.rfft(np.fft.ifftshift(padded, axes=-1), axis=-1) * geom.dt).astype(np.complex64)  # (Z, V, L//2+1)
    rho = np.fft.rfftfreq(length, d=geom.dt)
    d_rho = 1.0 / (length * geom.dt)
    d_theta = np.pi / geom.n_views
    # real image: sum over +rho and -rho = 2 Re(sum over rho > 0) + the rho = 0 term
    weight = np.full(rho.size, 2.0)
    weight[0] = 1.0
    if length % 2 == 0:
        weight[-1] = 1.0
    out = []
    phase = np.conj(_half_pixel_phase(geom.theta, rho, dx, n))
    for filt in filters:
        f = np.asarray(filt) * weight * d_rho * d_theta
        nz = np.nonzero(np.abs(f) > 1e-4 * np.abs(f).max())[0]
        last = int(nz.max()) + 1 if nz.size else 1
        r = rho[:last]
        c = spec[:, :, :last] * (f[:last] * phase[:, :last]).astype(np.complex64)[None]
        wy, wx = _polar_points(geom.theta, r, dx)
        img = _nufft().nufft2d1(wy, wx, c.reshape(z, -1), (n, n), eps=1e-4, isign=1, **_threads(nthreads))
        out.append(img.real.astype(np.float32))
    return out
