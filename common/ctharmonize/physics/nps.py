"""Noise power spectrum (NPS) of a CT volume from uniform square ROIs inside the body.

ROIs (``roi_size`` pixels square, candidates every half ROI in each measured slice, none overlapping
another chosen one of the same slice) must lie inside the field of view and inside the region:

* ``reference`` given: the noise-free image of the same reconstruction (e.g. the simulator with
  ``noise=False``, same kernel). The noise image is ``hu - reference`` and the region is the body (any
  tissue); candidates are used in a fixed random order. A blur-free ground-truth phantom is *not* such
  a reference: its difference also holds the kernel's blur at every edge (dose-independent power).
* otherwise (a single clinical image) the region is the body eroded by 5 mm (or ``mask``), where the
  image smoothed by a 2-pixel Gaussian is soft tissue or fat, [-200, 200] HU, everywhere in the ROI.
  A ROI is *uniform* when its detrended SD is at most ``1 + uniformity`` times the 10th percentile of
  all candidates' SDs: ROIs over an organ boundary or a vessel have more variance than noise alone.
  (Taking the quieter ROIs biases the SD low by a few per cent where noise varies across the body.)

Each ROI has its least-squares 2-D polynomial of order ``detrend_order`` (default 2: 1, x, y, x², xy, y²)
removed. The spectra come from :mod:`ctharmonize.metrics.noise_power`:
``NPS(u, v) = sx·sy / (Nx·Ny) · ⟨|DFT2(ROI)|²⟩`` in HU²·mm², pooled over ROIs, its radial average and
peak frequency. Noise SD is the square root of the mean detrended ROI variance (= the integral of the
NPS over the frequency plane). Frequencies are in lp/cm (10 lp/cm = 1 cycle/mm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ctharmonize.errors import InputError
from ctharmonize.metrics.noise_power import noise_power_spectrum, nps_peak_frequency, radial_nps
from ctharmonize.physics.volume_input import measured_volume

__all__ = ["NoisePower", "detrend", "measure_nps"]

_UNIFORM_HU = (-200.0, 200.0)
_ERODE_MM = 2.0
_STEP_HU = 50.0
_EDGE_SIGMA_PX = 3.0


@dataclass
class NoisePower:
    """Result of :func:`measure_nps`.

    Attributes:
        nps: 2-D NPS (HU²·mm²), fftshift-centred (DC at [N//2, N//2]).
        fy, fx: its row / column frequencies (lp/cm), increasing, ``(k − N//2) / (N·spacing)``.
        radial_frequency, radial: radially averaged NPS (lp/cm, HU²·mm²).
        noise_sd: noise standard deviation (HU). peak_frequency, mean_frequency: lp/cm.
        pixel_spacing: (row, column) mm. roi_size: pixels. rois: (slice, row, column) of each ROI's corner.
        source: ``"uniform ROIs"``, ``"mask"`` or ``"reference"``.
    """

    nps: np.ndarray
    fy: np.ndarray
    fx: np.ndarray
    radial_frequency: np.ndarray
    radial: np.ndarray
    noise_sd: float
    peak_frequency: float
    mean_frequency: float
    pixel_spacing: tuple[float, float]
    roi_size: int
    rois: list[tuple[int, int, int]] = field(default_factory=list)
    source: str = "uniform ROIs"

    @property
    def nyquist(self) -> float:
        """Nyquist frequency (lp/cm) of the coarser in-plane axis."""
        return 10.0 / (2.0 * max(self.pixel_spacing))

    def integral(self) -> float:
        """∫∫ NPS du dv (HU²): the noise variance."""
        du = (self.fx[1] - self.fx[0]) / 10.0
        dv = (self.fy[1] - self.fy[0]) / 10.0
        return float(self.nps.sum() * du * dv)

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars, the radial NPS and the 2-D NPS."""
        return {
            "noise_sd_hu": self.noise_sd, "peak_frequency_lp_cm": self.peak_frequency,
            "mean_frequency_lp_cm": self.mean_frequency, "nyquist_lp_cm": self.nyquist,
            "variance_from_nps_hu2": self.integral(), "pixel_spacing_mm": list(self.pixel_spacing),
            "roi_size_px": self.roi_size, "rois": len(self.rois), "source": self.source,
            "roi_corners": [list(r) for r in self.rois],
            "radial": {"frequency_lp_cm": self.radial_frequency.tolist(), "nps_hu2_mm2": self.radial.tolist()},
            "nps2d": {"fy_lp_cm": self.fy.tolist(), "fx_lp_cm": self.fx.tolist(), "nps_hu2_mm2": self.nps.tolist()},
        }


def _design(n: int, order: int) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    x = (x - (n - 1) / 2) / n
    y = (y - (n - 1) / 2) / n
    cols = [x**i * y**j for total in range(order + 1) for j in range(total + 1) for i in [total - j]]
    return np.stack([c.ravel() for c in cols], axis=1)


def detrend(rois: np.ndarray, order: int = 2) -> np.ndarray:
    """Square ROIs (K, N, N) minus each one's least-squares 2-D polynomial of total degree ``order``."""
    r = np.asarray(rois, dtype=np.float64)
    k, n = r.shape[0], r.shape[-1]
    a = _design(n, int(order))
    coef, *_ = np.linalg.lstsq(a, r.reshape(k, -1).T, rcond=None)
    return (r.reshape(k, -1) - (a @ coef).T).reshape(r.shape)


def _candidates(region: np.ndarray, n: int, zs: Sequence[int]) -> list[tuple[int, int, int]]:
    """(z, row, col) corners every n/2 pixels of the n x n squares that lie entirely in ``region``."""
    out = []
    step = max(n // 2, 1)
    for z in zs:
        full = ndimage.uniform_filter(region[z].astype(np.float32), size=n, mode="constant") > 1 - 1e-6
        ny, nx = region.shape[1:]
        for r0 in range(0, ny - n + 1, step):
            for c0 in range(0, nx - n + 1, step):
                if full[r0 + n // 2, c0 + n // 2]:
                    out.append((z, r0, c0))
    return out


def _non_overlapping(order: np.ndarray, corners: list[tuple[int, int, int]], n: int, limit: int) -> list[int]:
    chosen: list[int] = []
    for i in order:
        z, r, c = corners[i]
        if all(corners[j][0] != z or abs(corners[j][1] - r) >= n or abs(corners[j][2] - c) >= n for j in chosen):
            chosen.append(int(i))
            if len(chosen) >= limit:
                break
    return chosen


def measure_nps(
    hu: np.ndarray,
    spacing: Sequence[float],
    *,
    fov_mask: np.ndarray | None = None,
    body: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    roi_size: int = 32,
    max_rois: int = 64,
    min_rois: int = 4,
    max_slices: int | None = 32,
    uniformity: float = 0.3,
    detrend_order: int = 2,
) -> NoisePower:
    """NPS, noise SD and peak frequency of a CT volume (method: module docstring).

    Args:
        hu: volume (Z, Y, X) or slice (Y, X) in HU.
        spacing: (sx, sy[, sz]) in mm, sx along the last axis.
        fov_mask: bool, True inside the reconstructed field of view.
        body: bool body mask; default :func:`~ctharmonize.segmentation.body_mask.body_mask`.
        mask: bool region where ROIs may lie (instead of the eroded body); still checked for uniformity.
        reference: noise-free image of the same reconstruction (HU, same shape): measure ``hu - reference``
            anywhere in the body.
        roi_size: ROI side (pixels).
        max_rois, min_rois: use at most / need at least this many ROIs.
        max_slices: candidate ROIs from at most this many slices, evenly spaced (None: all).
        uniformity: keep ROIs whose detrended SD is at most (1 + uniformity) × the 10th percentile.
        detrend_order: total degree of the 2-D polynomial removed from each ROI (0: the mean only).

    Returns:
        :class:`NoisePower`.
    """
    a = np.asarray(hu, dtype=np.float32)
    n = int(roi_size)
    if a.ndim in (2, 3) and (n < 8 or n > min(a.shape[-2:])):  # checked before the body mask is computed
        raise InputError(None, f"roi_size {n} must be within 8..{min(a.shape[-2:])} pixels")
    volume = measured_volume(a, spacing, fov_mask, body)
    a, fov, body = volume.hu, volume.fov, volume.body
    sx, sy, _ = volume.spacing
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float32).reshape(a.shape)
        noise = a - ref
        region = body & fov
        source = "reference"
    else:
        noise = a
        if mask is not None:
            region = np.asarray(mask, dtype=bool).reshape(a.shape) & fov
            source = "mask"
        else:
            r = (int(np.ceil(_ERODE_MM / sy)), int(np.ceil(_ERODE_MM / sx)))
            disk = (np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1] ** 2 * np.array([sy, sx])[:, None, None] ** 2).sum(0)
            region = ndimage.binary_erosion(body & fov, structure=(disk <= _ERODE_MM**2)[None])
            source = "uniform ROIs"
        clipped = np.clip(a, -1100.0, 1100.0)
        smooth = ndimage.gaussian_filter(clipped, sigma=(0, 2, 2))
        region &= (smooth >= _UNIFORM_HU[0]) & (smooth <= _UNIFORM_HU[1])
        # no tissue boundary inside a ROI: the smoothed gradient of a step of _STEP_HU (HU/pixel) or more
        grad = ndimage.gaussian_gradient_magnitude(clipped, sigma=(0, _EDGE_SIGMA_PX, _EDGE_SIGMA_PX))
        floor = 3.0 * float(np.median(grad[region])) if region.any() else 0.0  # what noise alone gives
        region &= grad < max(_STEP_HU / (np.sqrt(2.0 * np.pi) * _EDGE_SIGMA_PX), floor)
    zs = [z for z in range(a.shape[0]) if region[z].any()]
    if max_slices is not None and len(zs) > int(max_slices):
        zs = [zs[int(i)] for i in np.round(np.linspace(0, len(zs) - 1, int(max_slices)))]
    corners = _candidates(region, n, zs)
    if len(corners) < int(min_rois):
        raise InputError(None, f"only {len(corners)} candidate {n}x{n} ROIs fit in the "
                               f"{'body' if reference is not None else 'uniform soft tissue'} (need {min_rois})")
    rois = detrend(np.stack([noise[z, r:r + n, c:c + n] for z, r, c in corners]), detrend_order)
    sds = rois.std(axis=(1, 2))
    keep = np.ones(len(corners), dtype=bool)
    if reference is None:
        keep = sds <= (1.0 + float(uniformity)) * np.percentile(sds, 10)
    order = np.flatnonzero(keep)[np.argsort(sds[keep])] if reference is None else np.flatnonzero(keep)
    if reference is not None:  # spread over the body rather than the first candidates
        order = np.random.default_rng(0).permutation(order)
    chosen = _non_overlapping(order, corners, n, int(max_rois))
    if len(chosen) < int(min_rois):
        raise InputError(None, f"only {len(chosen)} uniform {n}x{n} ROIs found (need {min_rois})")
    stack = rois[chosen]
    nps, fy, fx = noise_power_spectrum(stack, (sx, sy))
    rf, radial = radial_nps(nps, fy, fx)
    peak = nps_peak_frequency(stack, (sx, sy))
    f2 = np.hypot(fy[:, None], fx[None, :]) * 10.0
    mean_f = float((f2 * nps).sum() / max(float(nps.sum()), 1e-30))
    return NoisePower(
        nps=np.fft.fftshift(nps), fy=np.fft.fftshift(fy) * 10.0, fx=np.fft.fftshift(fx) * 10.0,
        radial_frequency=rf, radial=radial, noise_sd=float(np.sqrt(np.mean(stack.var(axis=(1, 2))))),
        peak_frequency=peak, mean_frequency=mean_f, pixel_spacing=(sy, sx), roi_size=n,
        rois=[corners[i] for i in chosen], source=source,
    )
