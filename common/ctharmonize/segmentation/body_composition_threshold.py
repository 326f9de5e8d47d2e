"""Weight-free body-composition labels by HU thresholds and morphology (``threshold`` backend).

Per axial slice, on HU smoothed in-plane (Gaussian, ``smooth_sigma`` voxels; tames sharp-kernel noise):

* body: as for the lungs (largest component > -400 HU, table removed, holes filled);
* bone (8): >= ``bone_hu`` (200 HU); lungs (1/2): the given or threshold-computed lung mask;
* a rim of ``air_rim`` voxels around air inside the body (lungs, airway, bowel gas) and the outermost
  ``skin_mm`` (+ ``smooth_sigma`` voxels of blur) of the body are partial-volume / skin tissue,
  never fat or muscle;
* the *wall* = largest component of (muscle-range or bone) tissue below the skin; its hull
  (dilate by ``wall_closing_mm``, fill holes, erode back; convex hull if it does not close) is
  "inside the wall";
* the *visceral cavity* = the inside of the bone cage: the hull of the bone (dilate by
  ``cage_closing_mm``, which links the rib cross-sections, fill, erode back) shrunk by
  ``cage_wall_mm`` (the ribs and intercostal muscles stay outside the cavity), joined with the
  convex hull of the lungs (lungs + mediastinum) and grown by ``air_rim`` voxels;
* skeletal muscle (5) = ``muscle_hu`` (-29..150 HU) inside the wall but outside the cavity;
* subcutaneous fat (6) = ``fat_hu`` (-190..-30 HU) outside the wall or on its outermost voxel;
* visceral / intermuscular fat (7) = fat-range voxels deeper inside the wall;
* other (9) = remaining body voxels (cavity organs, skin, rims); 0 outside the body.

Limitations: contrast-enhanced vessels above ``bone_hu`` count as bone; below the rib cage
(abdomen) the cavity is not closed, so organs in the muscle range count as muscle.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.body_mask import body_mask, smooth_hu
from ctharmonize.segmentation.holes import INPLANE_STRUCTURE, fill_holes_per_slice
from ctharmonize.segmentation.image_input import as_segmentation_input

__all__ = ["body_composition_threshold"]


def _edt_slices(mask: np.ndarray, sampling) -> np.ndarray:
    """Per-slice Euclidean distance (mm) of True voxels to the nearest False voxel of their slice."""
    out = np.zeros(mask.shape, dtype=np.float32)
    for z in range(mask.shape[0]):
        if mask[z].all():
            out[z] = np.inf
        elif mask[z].any():
            out[z] = ndimage.distance_transform_edt(mask[z], sampling=sampling)
    return out


def _hull_slices(mask: np.ndarray, radius_mm: float, sampling) -> np.ndarray:
    """Per slice: dilate by ``radius_mm``, fill holes, erode by ``radius_mm`` (distance transforms).

    Unlike a closing this also closes a ring of separate pieces (rib cross-sections, a muscle
    wall with gaps) whose gaps are narrower than 2 x ``radius_mm``, and fills what it encloses.
    The slices are padded by the radius so that the image border does not stop the erosion."""
    py, px = (int(np.ceil(radius_mm / s)) + 1 for s in sampling)
    padded = np.pad(mask, ((0, 0), (py, py), (px, px)))
    dilated = fill_holes_per_slice(_edt_slices(~padded, sampling) <= radius_mm)
    hull = _edt_slices(dilated, sampling) > radius_mm
    return hull[:, py:-py, px:-px] | mask


def _largest_per_slice(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=INPLANE_STRUCTURE)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = np.zeros(n + 1, dtype=bool)
    objs = ndimage.find_objects(labels)
    best: dict[int, tuple[int, int]] = {}
    for lab, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        z = sl[0].start
        if z not in best or sizes[lab] > best[z][1]:
            best[z] = (lab, sizes[lab])
    for lab, _ in best.values():
        keep[lab] = True
    return keep[labels]


def body_composition_threshold(
    image: Volume | np.ndarray,
    spacing=None,
    lung: np.ndarray | None = None,
    smooth_sigma: float = 1.0,
    muscle_hu: tuple[float, float] = (-29.0, 150.0),
    fat_hu: tuple[float, float] = (-190.0, -30.0),
    bone_hu: float = 200.0,
    skin_mm: float = 2.0,
    air_rim: float = 2.0,
    wall_closing_mm: float = 10.0,
    cage_closing_mm: float = 40.0,
    cage_wall_mm: float = 12.0,
    include_lungs: bool = True,
    name: str | None = None,
) -> np.ndarray:
    """uint8 (Z, Y, X) canonical tissue codes: 1/2 lungs, 5 muscle, 6 SAT, 7 VAT/IMAT, 8 bone,
    9 other body tissue, 0 outside the body. HU thresholds; see the module docstring.

    ``lung``: optional uint8 lung mask (1 right, 2 left); computed with the threshold lung
    backend when None. ``include_lungs=False`` leaves lungs as 0.
    """
    inp = as_segmentation_input(image, spacing, name)
    sx, sy, _ = inp.spacing
    sampling = (sy, sx)
    hu = np.where(inp.fov, inp.hu, -1024.0)
    sm = smooth_hu(hu, smooth_sigma, inp.fov)
    body = body_mask(sm, inp.spacing)
    out = np.zeros(hu.shape, dtype=np.uint8)
    if not body.any():
        return out
    if lung is None:
        from ctharmonize.segmentation.lung_threshold import segment_lungs_threshold

        lung = segment_lungs_threshold(image, spacing, name=name)
    lung = np.asarray(lung)
    if lung.shape != hu.shape:
        from ctharmonize.errors import DimensionError

        raise DimensionError(name, f"lung mask shape {lung.shape} differs from the image shape {hu.shape}")
    depth = _edt_slices(body, sampling)
    below_skin = body & (depth > skin_mm + smooth_sigma * max(sx, sy))  # skin + its blurred edge
    air = body & (sm < -400.0)
    air_rim = (_edt_slices(~air, (1.0, 1.0)) <= air_rim) & body
    bone = body & (sm >= bone_hu) & (lung == 0)
    fat = below_skin & ~air_rim & (sm >= fat_hu[0]) & (sm <= fat_hu[1])
    muscle_range = below_skin & ~air_rim & (sm >= muscle_hu[0]) & (sm <= muscle_hu[1])

    wall = _largest_per_slice((muscle_range | bone) & below_skin)
    inner = _hull_slices(wall, wall_closing_mm, sampling)
    for z in range(inner.shape[0]):  # an open wall: fall back to its convex hull
        if wall[z].any() and inner[z].sum() < 1.5 * wall[z].sum():
            inner[z] = convex_hull_image(wall[z])
    core = _edt_slices(inner, (1.0, 1.0)) > 1.0  # fat on the wall's blurred outer edge is SAT
    cage = _hull_slices(bone, cage_closing_mm, sampling)
    cavity = _edt_slices(cage, sampling) > cage_wall_mm
    for z in np.flatnonzero((lung > 0).any(axis=(1, 2))):  # lungs and mediastinum between them
        cavity[z] |= convex_hull_image(lung[z] > 0)
    cavity = (_edt_slices(~cavity, (1.0, 1.0)) <= air_rim) & body

    out[body] = 9
    out[muscle_range & inner & ~cavity] = 5
    out[fat & ~core] = 6
    out[fat & core] = 7
    out[bone] = 8
    if include_lungs:
        out[lung == 1] = 1
        out[lung == 2] = 2
    else:
        out[lung > 0] = 0
    return out
