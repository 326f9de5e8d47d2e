"""Trachea and main bronchi from a smoothed chest CT, by slice-wise region growing.

Method (direction of travel = cranio-caudal):

1. ``strict`` = smoothed HU below ``threshold`` (-950 HU): the airway lumen (~ -1000 HU) but not
   normal parenchyma (~ -850 HU).
2. Seed: in the ``seed_search_mm`` nearest the superior end of the air-in-body region, the 2-D
   component of ``strict`` whose area is trachea-like (``min_area_mm2``..``max_area_mm2``), that lies
   in the central third of the body (left-right) and whose wall ring is soft tissue
   (mediastinum/neck, not lung). All such components of the first slice that has any are seeds
   (the trachea, or both main bronchi when the scan starts below the carina).
3. Growing: slice by slice away from the seed (both ways), keep the 2-D components of ``strict``
   that touch the previous slice's airway, are not larger than ``max_area_mm2`` or
   ``max_growth`` x the previous cross-section (leak into emphysema or lung), and whose
   ``ring_mm`` wall ring is at most ``max_lung_ring`` lung: once a bronchus is surrounded by lung
   it is intrapulmonary and belongs to the lung field (lungmask convention).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["find_airway"]

_CONN4 = ndimage.generate_binary_structure(2, 1)


def _disk(radius_mm: float, sy: float, sx: float) -> np.ndarray:
    ry, rx = max(int(np.ceil(radius_mm / sy)), 1), max(int(np.ceil(radius_mm / sx)), 1)
    yy, xx = np.ogrid[-ry : ry + 1, -rx : rx + 1]
    return ((yy * sy) ** 2 + (xx * sx) ** 2) <= max(radius_mm, min(sy, sx)) ** 2 + 1e-6


class _SliceAnalyser:
    def __init__(self, smoothed, air, body, spacing, threshold, ring_mm, lumen_margin_mm):
        self.smoothed, self.air, self.body = smoothed, air, body
        self.sx, self.sy, _ = spacing
        self.pixel_mm2 = self.sx * self.sy
        self.threshold = threshold
        self.ring = _disk(ring_mm, self.sy, self.sx)
        self.lumen_steps = max(int(round(lumen_margin_mm / min(self.sx, self.sy))), 1)

    def components(self, z):
        strict = (self.smoothed[z] < self.threshold) & self.air[z]
        return ndimage.label(strict, structure=_CONN4)

    def lumen(self, comp: np.ndarray, z: int) -> np.ndarray:
        """``comp`` grown inside the air mask by the lumen margin (the blurred lumen edge)."""
        return ndimage.binary_dilation(comp, structure=_CONN4, iterations=self.lumen_steps, mask=self.air[z])

    def lung_ring_fraction(self, comp: np.ndarray, z: int) -> float:
        """Fraction of the wall ring around the lumen of ``comp`` (2-D) that is air (lung), not tissue."""
        lumen = self.lumen(comp, z)
        ring = ndimage.binary_dilation(lumen, structure=self.ring) & ~lumen & self.body[z]
        n = int(ring.sum())
        if n == 0:
            return 1.0
        return float((ring & self.air[z]).sum()) / n


def find_airway(
    smoothed: np.ndarray,
    air: np.ndarray,
    body: np.ndarray,
    spacing,
    superior: int | None,
    threshold: float = -950.0,
    min_area_mm2: float = 30.0,
    max_area_mm2: float = 1000.0,
    max_growth: float = 3.0,
    ring_mm: float = 3.0,
    max_lung_ring: float = 0.5,
    seed_search_mm: float = 40.0,
    lumen_margin_mm: float = 2.0,
) -> np.ndarray:
    """Bool (Z, Y, X) mask of the trachea and main bronchi (see the module docstring).

    ``smoothed`` is smoothed HU, ``air`` the air-inside-body mask (lung candidates + airway),
    ``body`` the body mask. ``superior`` is +1 when the head is at the last slice, -1 at the first,
    None to try both ends and keep the longer airway. Returns an empty mask when no trachea is found
    (e.g. a slab below the carina or a single slice). The returned lumen includes its blurred edge:
    each accepted cross-section is grown by ``lumen_margin_mm`` inside ``air``.
    """
    if superior is None:
        candidates = [find_airway(smoothed, air, body, spacing, s, threshold, min_area_mm2, max_area_mm2,
                                  max_growth, ring_mm, max_lung_ring, seed_search_mm, lumen_margin_mm)
                      for s in (1, -1)]
        lengths = [int(np.any(c, axis=(1, 2)).sum()) for c in candidates]
        return candidates[int(np.argmax(lengths))]
    out = np.zeros(air.shape, dtype=bool)
    zs = np.flatnonzero(air.any(axis=(1, 2)))
    if zs.size < 2:
        return out
    an = _SliceAnalyser(smoothed, air, body, spacing, threshold, ring_mm, lumen_margin_mm)
    sz = float(spacing[2])
    n_search = max(int(round(seed_search_mm / sz)), 1)
    order = zs[::-1] if superior > 0 else zs  # from the superior end inward
    seed_z, seed = None, None
    for z in order[:n_search]:
        labels, n = an.components(z)
        if n == 0:
            continue
        xs = np.flatnonzero(body[z].any(axis=0))
        x_lo, x_hi = xs.min(), xs.max()
        centre = 0.5 * (x_lo + x_hi)
        seeds = np.zeros(labels.shape, dtype=bool)
        areas = np.bincount(labels.ravel())
        for lab in range(1, n + 1):
            area = areas[lab] * an.pixel_mm2
            if not (min_area_mm2 <= area <= max_area_mm2):
                continue
            comp = labels == lab
            cx = np.nonzero(comp)[1].mean()
            if abs(cx - centre) > (x_hi - x_lo) / 6.0:
                continue
            if an.lung_ring_fraction(comp, z) > max_lung_ring:
                continue
            seeds |= comp
        if seeds.any():
            seed_z, seed = int(z), seeds
            break
    if seed is None:
        return out
    out[seed_z] = an.lumen(seed, seed_z)
    for step in (-superior, superior):  # toward the feet first, then up to the top of the scan
        prev = seed
        z = seed_z + step
        while 0 <= z < air.shape[0] and prev.any():
            labels, n = an.components(z)
            if n == 0:
                break
            touching = np.unique(labels[ndimage.binary_dilation(prev) & (labels > 0)])
            areas = np.bincount(labels.ravel())
            prev_area = prev.sum() * an.pixel_mm2
            keep = np.zeros_like(prev)
            for lab in touching:
                area = areas[lab] * an.pixel_mm2
                if area > max_area_mm2 or area > max_growth * max(prev_area, min_area_mm2):
                    continue
                comp = labels == lab
                if an.lung_ring_fraction(comp, z) > max_lung_ring:
                    continue
                keep |= comp
            out[z] = an.lumen(keep, z) if keep.any() else keep
            prev = keep
            z += step
    return out
