"""Explicit resampling of an irregular slice stack onto a regular orthogonal grid, and the guard that
asks for it.

A DICOM series read slice by slice (``read_dicom(slicewise=True)``) may have gantry tilt (slices
offset in-plane along the stack) or missing / unevenly spaced slices. Slice-wise harmonization and
the derived DICOM writer handle that as it is; a NIfTI file and the 3-D steps need a regular grid.
:func:`require_regular` refuses an irregular volume with a one-line error, and
:func:`resample_to_regular` resamples it only when asked to.
"""

from __future__ import annotations

import copy
import os

import numpy as np
from scipy import ndimage

from ctharmonize.errors import GeometryError, IrregularGeometryError
from ctharmonize.io.fov import AIR_HU
from ctharmonize.io.volume import Volume

__all__ = ["require_regular", "resample_to_regular"]

_EPS = 1e-6


def require_regular(volume: Volume, path: str | os.PathLike | None) -> None:
    """Raise :class:`IrregularGeometryError` naming ``path`` unless ``volume.is_regular``."""
    problem = volume.irregularity()
    if problem:
        raise IrregularGeometryError(
            path, f"slice positions are irregular ({problem}); a NIfTI volume or a 3-D step needs a regular "
            "grid: resample explicitly with resample_to_regular() / --resample, or write a DICOM series, "
            "which keeps each slice's geometry")


def _in_plane_axes(volume: Volume, path: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    row, col = volume.direction[:, 0], volume.direction[:, 1]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise GeometryError(path, "cannot resample: the in-plane axes are not orthonormal (skewed grid)")
    return row / np.linalg.norm(row), col / np.linalg.norm(col)


def _shifted(plane: np.ndarray, rows: float, cols: float, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """``plane`` (Y, X) sampled at (j - rows, i - cols), bilinear; and where that lies inside the plane."""
    ny, nx = plane.shape
    jj, ii = np.meshgrid(np.arange(ny) - rows, np.arange(nx) - cols, indexing="ij")
    valid = (jj >= -_EPS) & (jj <= ny - 1 + _EPS) & (ii >= -_EPS) & (ii <= nx - 1 + _EPS)
    if abs(rows) < _EPS and abs(cols) < _EPS:
        return plane.astype(np.float64), valid
    values = ndimage.map_coordinates(plane.astype(np.float64), [jj, ii], order=1, mode="nearest")
    return np.where(valid, values, fill), valid


def resample_to_regular(volume: Volume, spacing_z: float | None = None, *,
                        path: str | os.PathLike | None = None) -> Volume:
    """Resample ``volume`` onto a regular orthogonal grid (tilt correction and equidistant slices).

    Method (the tilt correction dcm2niix applies, plus linear interpolation between slices):

    * Target grid: the source's in-plane axes r, c (``direction`` columns 0, 1) and pixel spacing, the
      image normal n (oriented like the stack) as slice axis, origin = slice 0's position p_0, slice
      spacing ``spacing_z`` (default: the median gap along n). Target slice m lies at height
      t_m = m * spacing_z along n, for every t_m within the source stack; voxel (i, j, m) is at
      p_0 + i * sx * r + j * sy * c + t_m * n.
    * Tilt correction: source slice k (at p_k) is offset in-plane from p_0 by
      a_k = (p_k - p_0) . r / sx columns and b_k = (p_k - p_0) . c / sy rows; it is shifted back by
      bilinear interpolation (target pixel (j, i) <- source pixel (j - b_k, i - a_k)), so that every
      pixel column of the shifted stack runs along n.
    * Equidistant slices: between the two source slices at heights h_k <= t_m <= h_{k+1},
      value = (1 - w) * S_k + w * S_{k+1} with w = (t_m - h_k) / (h_{k+1} - h_k).
    * Voxels whose interpolation needs a pixel outside a source slice (uncovered by the tilted
      stack), or outside the source ``fov_mask``, become -1024 HU (air) and ``fov_mask`` False.

    A linear function of LPS position is reproduced exactly. The result has no ``slice_positions``
    or ``slice_datasets``; its ``source_dataset`` copy drops GantryDetectorTilt (the tilt is corrected)
    and ``header.extra["resampled"]`` describes what was done. A volume that is already regular (and
    ``spacing_z`` None) is returned unchanged.

    Args:
        volume: HU volume (Z, Y, X); ``slice_positions`` or its grid give each slice's position.
        spacing_z: target slice spacing in mm (default: median source gap along the normal).
        path: named in errors.
    """
    nz = volume.shape[0]
    if nz < 2 or (spacing_z is None and volume.is_regular):
        return volume
    row, col = _in_plane_axes(volume, path)
    positions = volume.positions_lps()
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    if (positions[-1] - positions[0]) @ normal < 0:
        normal = -normal
    rel = positions - positions[0]
    heights = rel @ normal
    gaps = np.diff(heights)
    if np.any(gaps <= 1e-3):
        k = int(np.argmin(gaps))
        raise GeometryError(path, f"cannot resample: slices {k} and {k + 1} are duplicated or out of order "
                                  f"along the normal (gap {gaps[k]:.4g} mm)")
    sz = float(np.median(gaps)) if spacing_z is None else float(spacing_z)
    if not np.isfinite(sz) or sz <= 0:
        raise GeometryError(path, f"cannot resample: slice spacing must be positive, not {spacing_z!r}")
    sx, sy, _ = volume.spacing
    shift_cols, shift_rows = rel @ row / sx, rel @ col / sy
    count = int(np.floor(heights[-1] / sz + 1e-6)) + 1
    targets = np.arange(count) * sz

    source = np.asarray(volume.array)
    fov = volume.fov_mask
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def shifted(k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in cache:
            values, valid = _shifted(source[k], shift_rows[k], shift_cols[k], AIR_HU)
            if fov is not None:
                inside, _ = _shifted(fov[k].astype(np.float64), shift_rows[k], shift_cols[k], 0.0)
                valid &= inside >= 1.0 - _EPS
            cache[k] = values, valid
        return cache[k]

    out = np.empty((count, *source.shape[1:]), dtype=np.float32)
    mask = np.ones(out.shape, dtype=bool)
    for m, t in enumerate(targets):
        k = int(np.clip(np.searchsorted(heights, t, side="right") - 1, 0, nz - 2))
        w = float(np.clip((t - heights[k]) / (heights[k + 1] - heights[k]), 0.0, 1.0))
        lo, lo_valid = shifted(k)
        hi, hi_valid = shifted(k + 1)
        valid = (lo_valid | (w > 1 - _EPS)) & (hi_valid | (w < _EPS))
        out[m] = np.where(valid, (1.0 - w) * lo + w * hi, AIR_HU)
        mask[m] = valid

    header = copy.deepcopy(volume.header)
    tilt = volume.irregularity() or "regular"
    header.extra["resampled"] = (f"resampled by ctharmonize to an orthogonal grid, {count} slices every "
                                 f"{sz:.4g} mm along the normal (tilt correction, linear interpolation; "
                                 f"source: {tilt})")
    source_ds = copy.deepcopy(volume.source_dataset) if volume.source_dataset is not None else None
    if source_ds is not None and "GantryDetectorTilt" in source_ds:
        del source_ds["GantryDetectorTilt"]
    return Volume(out, (sx, sy, sz), tuple(positions[0]), np.column_stack([row, col, normal]), header,
                  None if mask.all() and fov is None else mask, source_dataset=source_ds)
