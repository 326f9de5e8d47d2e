"""Lung density measures for emphysema: LAA-950, Perc15, volume, mean density, lung mass.

All inputs are HU (not [-1, 1]). Computed with torch so a CUDA tensor stays on the GPU; numpy
input works too. Results are Python floats; an empty lung gives NaN (volume 0.0), not an error.

* LAA (%) = 100 x #(lung voxels with HU strictly below ``threshold``) / #lung voxels.
* Perc15 (HU) = the ``percentile``-th percentile of lung HU with numpy's default 'linear'
  interpolation: sorted values v_0..v_{n-1}, position p = (n - 1) x q / 100, result
  v_floor(p) + (p - floor(p)) x (v_ceil(p) - v_floor(p)).
* volume (mL) = #lung voxels x voxel volume (sx x sy x sz / 1000).
* mean HU = arithmetic mean of lung HU.
* mass (g) = sum over lung voxels of voxel volume (mL) x (HU - air_hu) / 1000, i.e. density
  (HU + 1000) / 1000 g/mL (water = 1 g/mL). HU below air_hu count negative (noise), so that
  mass = volume x (mean HU - air_hu) / 1000 exactly. Paper 001 writes (HU + 1024) / 1024:
  pass ``air_hu=-1024.0`` and ``mass_scale=1024.0`` for that variant.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["emphysema_measures", "laa", "perc15", "lung_volume_ml", "mean_lung_density", "lung_mass_g"]

_SIDES = {"both": None, "right": 1, "left": 2}


def _tensor(x, device=None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.to(device) if device is not None else t


def _values(hu, mask) -> torch.Tensor:
    """HU of the voxels where ``mask`` is non-zero, float64 1-D tensor on ``hu``'s device."""
    h = _tensor(hu)
    m = _tensor(mask, h.device)
    if tuple(h.shape) != tuple(m.shape):
        raise ValueError(f"hu shape {tuple(h.shape)} and mask shape {tuple(m.shape)} differ")
    return h[m != 0].to(torch.float64)


def _voxel_ml(spacing) -> float:
    sx, sy, sz = (float(s) for s in spacing)
    return sx * sy * sz / 1000.0


def laa(hu, mask, threshold: float = -950.0) -> float:
    """Low-attenuation area (%): share of mask voxels with HU strictly below ``threshold``."""
    v = _values(hu, mask)
    if v.numel() == 0:
        return math.nan
    return float((v < threshold).sum().item() * 100.0 / v.numel())


def perc15(hu, mask, percentile: float = 15.0) -> float:
    """``percentile``-th percentile of mask HU (numpy 'linear' interpolation), HU."""
    v = _values(hu, mask)
    n = v.numel()
    if n == 0:
        return math.nan
    pos = (n - 1) * float(percentile) / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    v_lo = torch.kthvalue(v, lo + 1).values  # kthvalue avoids a full sort and has no size limit
    v_hi = torch.kthvalue(v, hi + 1).values if hi != lo else v_lo
    return float((v_lo + (pos - lo) * (v_hi - v_lo)).item())


def lung_volume_ml(mask, spacing) -> float:
    """Volume of the mask's non-zero voxels (mL); spacing (sx, sy, sz) in mm."""
    m = _tensor(mask)
    return float((m != 0).sum().item() * _voxel_ml(spacing))


def mean_lung_density(hu, mask) -> float:
    """Mean HU of the mask voxels."""
    v = _values(hu, mask)
    return float(v.mean().item()) if v.numel() else math.nan


def lung_mass_g(hu, mask, spacing, air_hu: float = -1000.0, mass_scale: float = 1000.0) -> float:
    """Lung mass (g) = sum of voxel volume (mL) x (HU - air_hu) / mass_scale over the mask."""
    v = _values(hu, mask)
    if v.numel() == 0:
        return math.nan
    return float(((v - air_hu) / mass_scale).sum().item() * _voxel_ml(spacing))


def _measures(v: torch.Tensor, voxel_ml: float, threshold, percentile, air_hu, mass_scale) -> dict[str, float]:
    n = v.numel()
    if n == 0:
        nan = math.nan
        return {"laa_pct": nan, "perc15_hu": nan, "volume_ml": 0.0, "mean_hu": nan, "mass_g": nan}
    ones = torch.ones(v.shape, dtype=torch.uint8, device=v.device)
    return {
        "laa_pct": laa(v, ones, threshold),
        "perc15_hu": perc15(v, ones, percentile),
        "volume_ml": n * voxel_ml,
        "mean_hu": float(v.mean().item()),
        "mass_g": float(((v - air_hu) / mass_scale).sum().item() * voxel_ml),
    }


def emphysema_measures(
    hu,
    lung,
    spacing,
    threshold: float = -950.0,
    percentile: float = 15.0,
    air_hu: float = -1000.0,
    mass_scale: float = 1000.0,
    device: str | torch.device | None = None,
) -> dict[str, dict[str, float]]:
    """Density measures of both lungs, the right (label 1) and the left (label 2) lung.

    ``hu``: (Z, Y, X) HU, numpy or torch; ``lung``: same shape, 0 background, 1 right, 2 left;
    ``spacing``: (sx, sy, sz) mm. ``device`` moves the computation (e.g. "cuda"); by default it
    runs where ``hu`` is. Returns ``{"both" | "right" | "left": {"laa_pct", "perc15_hu",
    "volume_ml", "mean_hu", "mass_g"}}`` with Python floats (NaN for an empty lung).
    """
    h = _tensor(hu, device)
    m = _tensor(lung, h.device)
    if tuple(h.shape) != tuple(m.shape):
        raise ValueError(f"hu shape {tuple(h.shape)} and lung shape {tuple(m.shape)} differ")
    voxel_ml = _voxel_ml(spacing)
    out = {}
    for side, code in _SIDES.items():
        sel = (m != 0) if code is None else (m == code)
        out[side] = _measures(h[sel].to(torch.float64), voxel_ml, threshold, percentile, air_hu, mass_scale)
    return out
