"""Read a label map (lung mask, tissue labels) and check that it is one, on its image's voxel grid.

A CT image passed where a label map is expected would otherwise be cast to uint8 and wrap into
garbage labels. :func:`read_label_map` refuses, naming the file and what it found, any image whose
values are not small non-negative integers (or not in ``allowed``), and one whose grid (shape,
spacing, origin, direction) differs from ``like`` beyond the tolerances below.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import numpy as np

from ctharmonize.errors import LabelMapError
from ctharmonize.io.read import read_volume
from ctharmonize.io.volume import Volume

__all__ = ["read_label_map", "check_same_grid", "MAX_LABELS", "SPACING_RTOL", "ORIGIN_TOL_VOXELS", "DIRECTION_ATOL"]

#: more distinct values than this (without ``allowed``) is not a label map; uint8 holds 0..255
MAX_LABELS = 128
#: relative tolerance on each voxel size
SPACING_RTOL = 1e-4
#: origin tolerance, as a fraction of the smallest voxel size
ORIGIN_TOL_VOXELS = 0.01
#: absolute tolerance on each direction cosine (the NIfTI reader's orthogonality tolerance)
DIRECTION_ATOL = 1e-3


def _fmt(values) -> str:
    return ", ".join(f"{float(v):g}" for v in values)


def _check_values(path: str | os.PathLike, array: np.ndarray, allowed: Collection[int] | None) -> None:
    values = np.unique(array)
    lo, hi = float(values[0]), float(values[-1])
    expected = (f"expected integer labels in {{{', '.join(str(int(a)) for a in sorted(allowed))}}}" if allowed is not None
                else f"expected at most {MAX_LABELS} distinct integer labels in 0..255")
    non_integer = values[values != np.rint(values)]
    found = f"{values.size} distinct values from {lo:g} to {hi:g}"
    hint = " (a CT image in HU?)" if lo <= -500 or hi >= 1000 else ""
    if non_integer.size:
        raise LabelMapError(path, f"not a label map: {found}, {non_integer.size} of them not integers "
                                  f"(e.g. {_fmt(non_integer[:3])}){hint}; {expected}")
    if lo < 0 or hi > 255 or (allowed is None and values.size > MAX_LABELS):
        raise LabelMapError(path, f"not a label map: {found}{hint}; {expected}")
    if allowed is not None:
        extra = sorted(set(values.astype(int).tolist()) - {int(a) for a in allowed})
        if extra:
            shown = ", ".join(map(str, extra[:8])) + (", ..." if len(extra) > 8 else "")
            raise LabelMapError(path, f"not a label map of these labels: {found}, including {shown}{hint}; {expected}")


def check_same_grid(path: str | os.PathLike, labels: Volume, like: Volume) -> None:
    """Raise :class:`LabelMapError` naming ``path`` unless ``labels`` lies on ``like``'s voxel grid.

    Shape (Z, Y, X) must be equal; spacing (mm) within :data:`SPACING_RTOL`; origin (LPS mm) within
    :data:`ORIGIN_TOL_VOXELS` of the smallest voxel size; direction cosines within :data:`DIRECTION_ATOL`.
    """
    def vec(v) -> str:
        return "(" + ", ".join(f"{float(x):.6g}" for x in v) + ")"

    if labels.shape != like.shape:
        raise LabelMapError(path, f"label map is on another grid than the image: shape (Z, Y, X) {labels.shape} "
                                  f"vs {like.shape}")
    if not np.allclose(labels.spacing, like.spacing, rtol=SPACING_RTOL, atol=0):
        raise LabelMapError(path, f"label map is on another grid than the image: spacing (x, y, z) "
                                  f"{vec(labels.spacing)} mm vs {vec(like.spacing)} mm")
    tol = ORIGIN_TOL_VOXELS * min(like.spacing)
    if np.max(np.abs(np.subtract(labels.origin, like.origin))) > tol:
        raise LabelMapError(path, f"label map is on another grid than the image: origin (LPS) {vec(labels.origin)} mm "
                                  f"vs {vec(like.origin)} mm")
    if not np.allclose(labels.direction, like.direction, rtol=0, atol=DIRECTION_ATOL):
        raise LabelMapError(path, "label map is on another grid than the image: direction (columns) "
                                  f"{' '.join(vec(c) for c in labels.direction.T)} vs "
                                  f"{' '.join(vec(c) for c in like.direction.T)}")


def read_label_map(path: str | os.PathLike, like: Volume | None = None,
                   allowed: Collection[int] | None = None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a label map (NIfTI, or DICOM as :func:`read_volume` reads it) as uint8 (Z, Y, X).

    Args:
        path: the label map file.
        like: the image it belongs to; when given, the grid must match (see :func:`check_same_grid`).
        allowed: the label values it may hold, e.g. ``{0, 1, 2}`` for a lung mask (0 background,
            1 right, 2 left). Without it: integers 0..255, at most :data:`MAX_LABELS` distinct values.
        shape: the (Z, Y, X) shape it must have, for callers that hold an array but not its Volume.

    Raises:
        LabelMapError: ``"<path>: not a label map: 1843 distinct values from -1024 to 1712 (a CT image
            in HU?); expected integer labels in {0, 1, 2}"``, or a grid mismatch. Read errors as for
            :func:`read_volume` (no outside-FOV padding is detected in a label map).
    """
    volume = read_volume(path, padding_values=None)
    _check_values(path, volume.array, allowed)
    if like is not None:
        check_same_grid(path, volume, like)
    if shape is not None and volume.array.shape != tuple(shape):
        raise LabelMapError(path, f"label map shape {volume.array.shape} differs from the image shape {tuple(shape)}")
    return volume.array.astype(np.uint8)
