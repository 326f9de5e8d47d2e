"""Left/right lung labelling: choose the lung components and split joined lungs.

Rules (label 1 = patient right = smaller LPS x, label 2 = patient left):

* Two large components (the second at least ``min_fraction`` of the first) lying on opposite
  sides of the body midline are the two lungs.
* One component with at least ``min_side_fraction`` of its volume on each side of the midline
  is two joined lungs (anterior/posterior junction): its Euclidean distance map (mm) is
  thresholded at increasing depths until it falls apart into two cores, each at least
  ``min_fraction`` of the component, on opposite sides; the cores are grown back over the
  component with a watershed on the distance map. If it never splits, it is cut at the midline.
* Otherwise the largest component is a single lung, labelled by the side of its centroid.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from ctharmonize.segmentation.orientation import lps_offset

__all__ = ["label_left_right"]

_SPLIT_DEPTHS_MM = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 13.0)


def _side_x(coords: np.ndarray, direction, spacing) -> np.ndarray:
    return lps_offset(direction, spacing, coords, axis=0)


def _bbox(mask: np.ndarray) -> tuple[slice, ...]:
    return ndimage.find_objects(mask.astype(np.uint8))[0]


def _split(comp: np.ndarray, spacing, direction, midline_x: float, min_fraction: float) -> np.ndarray:
    """uint8 labels 1/2 for one joined component (cropped array)."""
    sx, sy, sz = spacing
    dist = ndimage.distance_transform_edt(comp, sampling=(sz, sy, sx))
    total = int(comp.sum())
    for depth in _SPLIT_DEPTHS_MM:
        core = dist > depth
        labels, n = ndimage.label(core)
        if n < 2:
            if n == 0:
                break
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        a, b = np.argsort(sizes)[::-1][:2]
        if sizes[b] < min_fraction * total:
            continue
        xa = _side_x(np.array(ndimage.center_of_mass(labels == a)), direction, spacing)
        xb = _side_x(np.array(ndimage.center_of_mass(labels == b)), direction, spacing)
        if (xa - midline_x) * (xb - midline_x) >= 0:
            continue
        right, left = (a, b) if xa < xb else (b, a)
        markers = np.zeros(comp.shape, dtype=np.int32)
        markers[labels == right] = 1
        markers[labels == left] = 2
        return watershed(-dist, markers, mask=comp).astype(np.uint8)
    zyx = np.indices(comp.shape).reshape(3, -1).T
    x = _side_x(zyx, direction, spacing).reshape(comp.shape)
    return np.where(comp, np.where(x < midline_x, 1, 2), 0).astype(np.uint8)


def label_left_right(
    lungs: np.ndarray,
    body: np.ndarray,
    spacing,
    direction,
    min_fraction: float = 0.1,
    min_side_fraction: float = 0.2,
) -> np.ndarray:
    """uint8 (Z, Y, X): 0 background, 1 right lung, 2 left lung from a bool lung-field mask.

    ``body`` (bool) gives the midline (LPS x of its centroid); ``direction`` is the volume's
    3x3 direction matrix (columns = LPS vectors of the column/row/slice axes).
    """
    out = np.zeros(lungs.shape, dtype=np.uint8)
    labels, n = ndimage.label(lungs)
    if n == 0:
        return out
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    order = np.argsort(sizes)[::-1]
    midline = float(_side_x(np.array(ndimage.center_of_mass(body)), direction, spacing))
    first = order[0]
    centroid = {lab: float(_side_x(np.array(ndimage.center_of_mass(labels == lab)), direction, spacing))
                for lab in order[:2] if sizes[lab] > 0}
    if n >= 2 and sizes[order[1]] >= min_fraction * sizes[first]:
        second = order[1]
        if (centroid[first] - midline) * (centroid[second] - midline) < 0:
            right, left = (first, second) if centroid[first] < centroid[second] else (second, first)
            out[labels == right] = 1
            out[labels == left] = 2
            return out
    comp = labels == first
    box = _bbox(comp)
    crop = comp[box]
    offset = np.array([s.start for s in box], dtype=float)
    zyx = np.argwhere(crop) + offset
    x = _side_x(zyx, direction, spacing)
    right_share = float((x < midline).mean())
    if min(right_share, 1.0 - right_share) >= min_side_fraction:
        # shift the midline into crop coordinates: lps_offset is linear in the index
        mid_crop = midline - float(_side_x(offset, direction, spacing))
        out[box][crop] = _split(crop, spacing, direction, mid_crop, min_fraction)[crop]
    else:
        out[comp] = 1 if right_share >= 0.5 else 2
    return out
