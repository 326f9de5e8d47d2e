"""Nonlinear vendor image processing applied after FBP: iterative-reconstruction-like noise
reduction and GE BONE-style edge enhancement.

Real scanners do not stop at filtered back-projection. Iterative reconstruction (Siemens
SAFIRE/ADMIRE, GE ASiR) removes noise while keeping edges, and sharp GE kernels add a
contrast-dependent edge enhancement. Both are nonlinear, so no linear filter (and no per-band
gain) maps one vendor's image onto another's exactly. This module models them:

* :func:`edge_preserving_denoise`: total-variation denoising (Chambolle's algorithm,
  ``skimage.restoration.denoise_tv_chambolle``) per axial slice, blended with the FBP image as
  GE's ASiR blends (``blend`` = ASiR fraction; Siemens-like presets use a full blend and set the
  strength with the weight). It removes noise and flattens small low-contrast structures while
  keeping strong edges: the "plastic" look of iterative reconstruction.
* :func:`edge_enhance`: unsharp masking whose gain grows with the local detail amplitude,
  ``out = x + gain * d * |d| / (|d| + threshold)``, ``d = x - G_sigma * x``: edges of bone,
  vessels and airway walls (large ``|d|``) are enhanced, small noise fluctuations much less.

Images are HU, (Z, Y, X) float32, pixel spacing in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ctharmonize.errors import ConfigError

__all__ = ["ProcessingSpec", "edge_preserving_denoise", "edge_enhance", "apply_processing"]


@dataclass(frozen=True)
class ProcessingSpec:
    """A vendor's post-FBP processing at strength 1.

    Attributes:
        ir_label: how the scanner would name it (DICOM-like), e.g. ``"ADMIRE 3"``.
        ir_weight_hu: total-variation weight (HU) at strength 1 (larger = smoother).
        ir_blend: fraction of the denoised image in the output (ASiR percentage / 100).
        edge_gain: {kernel domain: gain} of the nonlinear edge enhancement (absent = none).
        edge_sigma_mm: Gaussian sigma (mm) of the unsharp mask.
        edge_threshold_hu: detail amplitude (HU) at which the enhancement reaches half its gain.
    """

    ir_label: str
    ir_weight_hu: float
    ir_blend: float
    edge_gain: dict[str, float]
    edge_sigma_mm: float = 0.8
    edge_threshold_hu: float = 150.0


def edge_preserving_denoise(hu: np.ndarray, weight_hu: float, blend: float = 1.0) -> np.ndarray:
    """Per-slice TV denoising of ``hu`` (Z, Y, X) blended ``blend`` : ``1 - blend`` with the input."""
    if weight_hu <= 0 or blend <= 0:
        return np.asarray(hu, np.float32).copy()
    if not 0.0 <= blend <= 1.0:
        raise ConfigError(None, f"iterative-reconstruction blend must be within 0..1, got {blend}")
    from skimage.restoration import denoise_tv_chambolle

    x = np.asarray(hu, np.float32)
    scaled = x / np.float32(1000.0)
    den = denoise_tv_chambolle(scaled, weight=float(weight_hu) / 1000.0, channel_axis=0, eps=2e-4,
                               max_num_iter=100)
    out = (1.0 - blend) * x + blend * (np.float32(1000.0) * den.astype(np.float32))
    return out.astype(np.float32)


def edge_enhance(hu: np.ndarray, gain: float, spacing_mm: float, sigma_mm: float = 0.8,
                 threshold_hu: float = 150.0) -> np.ndarray:
    """Contrast-dependent unsharp masking of ``hu`` (Z, Y, X), in-plane only."""
    x = np.asarray(hu, np.float32)
    if gain <= 0:
        return x.copy()
    s = float(sigma_mm) / float(spacing_mm)
    d = x - ndimage.gaussian_filter(x, sigma=(0.0, s, s), mode="nearest")
    a = np.abs(d)
    return (x + np.float32(gain) * d * a / (a + np.float32(threshold_hu))).astype(np.float32)


def apply_processing(hu: np.ndarray, kernel: str, spec: ProcessingSpec, spacing_mm: float,
                     ir_strength: float = 1.0, edge_strength: float = 1.0) -> np.ndarray:
    """The vendor's processing of one kernel's FBP image (HU): denoising, then edge enhancement.

    ``ir_strength`` scales the TV weight and ``edge_strength`` the edge gain (0 = off, 1 = the
    vendor preset).
    """
    if ir_strength < 0 or edge_strength < 0:
        raise ConfigError(None, f"processing strengths must be >= 0, got ir {ir_strength}, edge {edge_strength}")
    out = edge_preserving_denoise(hu, spec.ir_weight_hu * ir_strength, spec.ir_blend)
    gain = spec.edge_gain.get(kernel, 0.0) * edge_strength
    if gain > 0:
        out = edge_enhance(out, gain, spacing_mm, spec.edge_sigma_mm, spec.edge_threshold_hu)
    return out
