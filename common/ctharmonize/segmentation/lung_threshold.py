"""Weight-free lung segmentation by thresholding and morphology (the ``threshold`` backend).

Pipeline (all thresholds on HU after in-plane Gaussian smoothing, robust to sharp-kernel noise):

1. Outside-FOV voxels (``fov_mask`` or padding below -1500 HU such as -2048/-3024) become air.
2. Body = largest connected component of > ``air_threshold`` HU after an in-plane opening (the
   table falls off), holes filled per slice.
3. Lung air = < ``air_threshold`` HU inside the body; air touching the image border or the FOV
   edge is outside air and dropped, unless its median (raw) HU is above ``outside_air_hu``
   (-950): that is parenchyma of a lung cut by a narrow field of view.
4. Trachea and main bronchi are removed (:func:`ctharmonize.segmentation.airway.find_airway`).
5. Air components smaller than ``min_lung_ml`` (1 mL: sinus, bowel gas bubbles) are dropped; the
   two lungs are chosen and labelled right/left, joined lungs are split
   (:func:`ctharmonize.segmentation.lung_split.label_left_right`).
6. Each lung is closed in-plane (``closing_mm``) and its holes filled per slice, so vessels and
   nodules inside the lung field belong to it (lungmask convention).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.airway import find_airway
from ctharmonize.segmentation.body_mask import body_mask, smooth_hu
from ctharmonize.segmentation.holes import INPLANE_STRUCTURE, fill_holes_per_slice
from ctharmonize.segmentation.image_input import as_segmentation_input
from ctharmonize.segmentation.lung_split import label_left_right
from ctharmonize.segmentation.orientation import superior_end

__all__ = ["segment_lungs_threshold"]


def _close_inplane(mask: np.ndarray, radius_mm: float, sy: float, sx: float) -> np.ndarray:
    """In-plane binary closing with a disk of ``radius_mm``, per slice, via two Euclidean distance
    transforms (cost independent of the radius)."""
    py, px = int(np.ceil(radius_mm / sy)) + 1, int(np.ceil(radius_mm / sx)) + 1
    out = mask.copy()
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        m = np.pad(mask[z], ((py, py), (px, px)))
        dilated = ndimage.distance_transform_edt(~m, sampling=(sy, sx)) <= radius_mm
        closed = ndimage.distance_transform_edt(dilated, sampling=(sy, sx)) > radius_mm
        out[z] |= closed[py:-py, px:-px]
    return out


def _lung_air(sm: np.ndarray, hu: np.ndarray, body: np.ndarray, fov: np.ndarray, air_threshold: float,
              outside_air_hu: float) -> np.ndarray:
    """Air that can be lung: air enclosed by the body, plus air components that reach the image
    border or the FOV edge but are parenchyma rather than outside air (median of the unsmoothed,
    unclipped HU above ``outside_air_hu``; noise is symmetric, so outside air has a median of
    ~-1000 HU for any kernel): lungs cut by a narrow field of view."""
    air = fov & (sm < air_threshold)
    labels, n = ndimage.label(air)
    if n == 0:
        return air
    edge = ~fov
    edge[:, 0, :] = edge[:, -1, :] = edge[:, :, 0] = edge[:, :, -1] = True
    edge = ndimage.binary_dilation(edge, structure=INPLANE_STRUCTURE)
    touching = np.zeros(n + 1, dtype=bool)
    touching[np.unique(labels[edge & air])] = True
    touching[0] = False
    keep = ~touching
    if touching.any():
        # median above outside_air_hu <=> fewer than half of the voxels at or below it (O(n), no sort)
        total = np.bincount(labels.ravel(), minlength=n + 1)
        low = np.bincount(labels[hu <= outside_air_hu], minlength=n + 1)
        keep |= touching & (2 * low < total)
    keep[0] = False
    inside = keep[labels]
    # enclosed air counts only inside the body; cut-off parenchyma may lie outside the body mask
    return inside & (body | touching[labels])


def segment_lungs_threshold(
    image: Volume | np.ndarray,
    spacing=None,
    air_threshold: float = -400.0,
    smooth_sigma: float = 1.0,
    remove_airway: bool = True,
    airway_threshold: float = -950.0,
    airway_sigma_mm: float = 1.0,
    closing_mm: float = 6.0,
    min_fraction: float = 0.1,
    min_lung_ml: float = 1.0,
    outside_air_hu: float = -950.0,
    superior: int | None | str = "auto",
    name: str | None = None,
) -> np.ndarray:
    """Lung mask uint8 (Z, Y, X): 0 background, 1 right lung, 2 left lung.

    ``image``: Volume or (Z, Y, X) HU array; ``spacing`` (sx, sy, sz) mm overrides the volume's.
    ``superior``: +1 head at the last slice, -1 at the first, None/"auto" = from the Volume's
    direction (arrays: try both ends). See the module docstring for the method.
    """
    inp = as_segmentation_input(image, spacing, name)
    out = np.zeros(inp.hu.shape, dtype=np.uint8)
    if superior == "auto":
        superior = superior_end(inp.direction) if isinstance(image, Volume) else None
    sm = smooth_hu(inp.hu, smooth_sigma, inp.fov)
    body = body_mask(sm, inp.spacing, threshold=air_threshold)
    if not body.any():
        return out
    box = ndimage.find_objects(body.astype(np.uint8))[0]
    box = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(box, body.shape, strict=True))
    sm, body, fov = sm[box], body[box], inp.fov[box]
    air = _lung_air(sm, inp.hu[box], body, fov, air_threshold, outside_air_hu)
    airway = np.zeros_like(air)
    if remove_airway:
        # the airway lumen has a size in mm: smooth it by at most ``airway_sigma_mm``
        sigma = min(smooth_sigma, airway_sigma_mm / min(inp.spacing[:2]))
        sm_airway = smooth_hu(inp.hu, sigma, inp.fov)[box] if sigma != smooth_sigma else sm
        airway = find_airway(sm_airway, air, body, inp.spacing, superior, threshold=airway_threshold)
    candidates = air & ~airway
    labels, n = ndimage.label(candidates)
    if n:
        voxel_ml = float(np.prod(inp.spacing)) / 1000.0
        small = np.bincount(labels.ravel()) * voxel_ml < min_lung_ml
        small[0] = False
        candidates &= ~small[labels]
    lr = label_left_right(candidates, body, inp.spacing, inp.direction, min_fraction=min_fraction)
    sx, sy, _ = inp.spacing
    result = np.zeros(lr.shape, dtype=np.uint8)
    for lab in (1, 2):
        m = lr == lab
        if not m.any():
            continue
        if closing_mm > 0:
            m = _close_inplane(m, closing_mm, sy, sx)
        m = fill_holes_per_slice(m) & (body | air) & ~airway
        result[m & (result == 0) & ((lr == 0) | (lr == lab))] = lab
    out[box] = result
    return out
