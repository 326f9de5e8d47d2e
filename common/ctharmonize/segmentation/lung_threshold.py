"""Weight-free lung segmentation by thresholding and morphology (the ``threshold`` backend).

Pipeline (all thresholds on HU after in-plane Gaussian smoothing, robust to sharp-kernel noise):

1. Outside-FOV voxels (``fov_mask`` or padding below -1500 HU such as -2048/-3024) become air.
2. Body = largest connected component of > ``air_threshold`` HU after an in-plane opening (the
   table falls off), holes filled per slice.
3. Air in body = body & < ``air_threshold`` HU; components touching the slice border are dropped.
4. Trachea and main bronchi are removed (:func:`ctharmonize.segmentation.airway.find_airway`).
5. The two lungs are chosen and labelled right/left, joined lungs are split
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
from ctharmonize.segmentation.holes import fill_holes_per_slice
from ctharmonize.segmentation.image_input import as_segmentation_input
from ctharmonize.segmentation.lung_split import label_left_right
from ctharmonize.segmentation.orientation import superior_end

__all__ = ["segment_lungs_threshold"]


def _disk(radius_mm: float, sy: float, sx: float) -> np.ndarray:
    ry, rx = int(round(radius_mm / sy)), int(round(radius_mm / sx))
    yy, xx = np.ogrid[-ry : ry + 1, -rx : rx + 1]
    return (((yy * sy) ** 2 + (xx * sx) ** 2) <= radius_mm**2 + 1e-6)[None]


def _drop_border_components(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    touching = np.zeros(n + 1, dtype=bool)
    for edge in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
        touching[np.unique(edge)] = True
    touching[0] = True
    return ~touching[labels] & mask


def segment_lungs_threshold(
    image: Volume | np.ndarray,
    spacing=None,
    air_threshold: float = -400.0,
    smooth_sigma: float = 1.0,
    remove_airway: bool = True,
    airway_threshold: float = -950.0,
    airway_sigma_mm: float = 1.0,
    closing_mm: float = 2.0,
    min_fraction: float = 0.1,
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
    air = _drop_border_components(body & fov & (sm < air_threshold))
    airway = np.zeros_like(air)
    if remove_airway:
        # the airway lumen has a size in mm: smooth it by at most ``airway_sigma_mm``
        sigma = min(smooth_sigma, airway_sigma_mm / min(inp.spacing[:2]))
        sm_airway = smooth_hu(inp.hu, sigma, inp.fov)[box] if sigma != smooth_sigma else sm
        airway = find_airway(sm_airway, air, body, inp.spacing, superior, threshold=airway_threshold)
    lr = label_left_right(air & ~airway, body, inp.spacing, inp.direction, min_fraction=min_fraction)
    sx, sy, _ = inp.spacing
    closing = _disk(closing_mm, sy, sx) if closing_mm > 0 else None
    result = np.zeros(lr.shape, dtype=np.uint8)
    for lab in (1, 2):
        m = lr == lab
        if not m.any():
            continue
        if closing is not None:
            m = ndimage.binary_closing(m, structure=closing) | m
        m = fill_holes_per_slice(m) & body & ~airway
        result[m & (result == 0) & ((lr == 0) | (lr == lab))] = lab
    out[box] = result
    return out
