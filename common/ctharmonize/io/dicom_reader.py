"""Read a CT DICOM series (a folder, searched recursively, or one file) into a :class:`Volume` in HU.

* Every file is parsed once (pixel data included) in a thread pool.
* Slices are sorted by their ImagePositionPatient projected on the slice normal
  (ImageOrientationPatient row x column), never by file name or InstanceNumber.
* By default the slices must lie on a regular orthogonal grid: gantry tilt, missing slices and
  uneven spacing are refused (the 3-D steps need a grid). ``slicewise=True`` accepts them and keeps
  every slice's position (``Volume.slice_positions``) for slice-wise harmonization, DICOM -> DICOM;
  duplicate positions are always refused.
* The slice plane (axial / sagittal / coronal / oblique) is recorded in ``header.extra["orientation"]``.
* RescaleSlope / RescaleIntercept are applied per slice; compressed transfer syntaxes
  (JPEG 2000, JPEG-LS, JPEG lossless, RLE) are decoded by pydicom's pylibjpeg plugins.
* Outside-FOV padding (PixelPaddingValue [.. PixelPaddingRangeLimit] in raw values, or -2048,
  -3024, -2000 HU) becomes ``Volume.fov_mask`` == False and -1024 HU in ``Volume.array``.

In a folder, hidden files, ``DICOMDIR`` and common non-image files (``.txt``, ``.json``,
``.xml``, ``.jpg`` ...) are ignored by name; other files that turn out not to be DICOM, and DICOM
files that hold no image (DICOMDIR, structured reports, presentation states) are skipped with a
log message. Everything else must belong to one CT series.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from ctharmonize.errors import (
    EmptyInputError,
    GantryTiltError,
    InputError,
    ModalityError,
    MultipleSeriesError,
    NotDicomError,
    SliceSpacingError,
)
from ctharmonize.io.dicom_file import (
    CT_SOP_CLASSES,
    IGNORED_NAMES,
    IGNORED_SUFFIXES,
    DicomSlice,
    SkippedFile,
    float_or,
    list_dicom_candidates,
    load_slice,
)
from ctharmonize.io.dicom_header import header_summary
from ctharmonize.io.fov import AIR_HU, PADDING_VALUES_HU
from ctharmonize.io.slice_orientation import slice_orientation
from ctharmonize.io.volume import Volume

__all__ = ["read_dicom", "list_dicom_candidates", "IGNORED_NAMES", "IGNORED_SUFFIXES"]

log = logging.getLogger(__name__)

# Padding values at or above air cannot be told apart from air; they are not used as FOV padding.
_MAX_PADDING_HU = AIR_HU - 1.0


def _vector(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray:
    value = ds.get(keyword)
    try:
        vec = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(path, f"missing or invalid {keyword}; cannot place the slice in space") from err
    if vec.shape != (n,) or not np.all(np.isfinite(vec)):
        raise InputError(path, f"invalid {keyword} {list(value)!r}; expected {n} finite numbers")
    return vec


def _group_series(folder: Path, slices: list[DicomSlice]) -> None:
    series: dict[str, list[DicomSlice]] = {}
    for s in slices:
        series.setdefault(str(s.ds.get("SeriesInstanceUID", "<missing SeriesInstanceUID>")), []).append(s)
    if len(series) > 1:
        parts = []
        for uid, members in series.items():
            ds = members[0].ds
            desc = str(ds.get("SeriesDescription", "")).strip()
            parts.append(f"{uid} ({ds.get('Modality', '?')}, {len(members)} files{', ' + desc if desc else ''})")
        raise MultipleSeriesError(
            folder, f"{len(series)} series in one folder; pass one series' folder: " + "; ".join(parts))


def _check_modality(slices: list[DicomSlice]) -> None:
    for s in slices:
        modality = str(s.ds.get("Modality", "")).strip().upper()
        if modality != "CT" and not (not modality and str(s.ds.get("SOPClassUID", "")) in CT_SOP_CLASSES):
            raise ModalityError(s.path, f"Modality is {modality or 'missing'!r}, not 'CT'")


def _check_consistent(folder: Path, slices: list[DicomSlice]) -> tuple[np.ndarray, np.ndarray]:
    """Same matrix size, pixel spacing and orientation on every slice; returns (iop, pixel_spacing)."""
    first = slices[0]
    iop = _vector(first.ds, "ImageOrientationPatient", 6, first.path)
    spacing = _vector(first.ds, "PixelSpacing", 2, first.path)
    if np.any(spacing <= 0):
        raise InputError(first.path, f"PixelSpacing {spacing.tolist()} must be positive")
    for s in slices[1:]:
        if s.raw.shape != first.raw.shape:
            raise InputError(folder, f"slices differ in size: {first.path.name} is {first.raw.shape}, "
                                     f"{s.path.name} is {s.raw.shape}")
        if not np.allclose(_vector(s.ds, "ImageOrientationPatient", 6, s.path), iop, atol=1e-4):
            raise InputError(folder, f"slices differ in ImageOrientationPatient ({first.path.name} vs {s.path.name})")
        if not np.allclose(_vector(s.ds, "PixelSpacing", 2, s.path), spacing, rtol=1e-4):
            raise InputError(folder, f"slices differ in PixelSpacing ({first.path.name} vs {s.path.name})")
    return iop, spacing


_SLICEWISE_HINT = ("pass slicewise=True to keep each slice's own geometry (harmonization is slice-wise; "
                   "3-D use then needs explicit resampling)")


def _geometry(
    folder: Path, slices: list[DicomSlice], allow_tilt: bool, spacing_tolerance: float, slicewise: bool = False
) -> tuple[list[DicomSlice], tuple[float, float, float], np.ndarray, np.ndarray, np.ndarray | None]:
    """Sort slices along the normal and check spacing and tilt.

    Returns (sorted slices, spacing, origin, direction, slice_positions). ``slice_positions`` (Z, 3)
    is set only with ``slicewise`` for a series off a regular orthogonal grid (tilt, uneven gaps);
    the direction is then (row, column, normal) and the slice spacing the median gap along the normal.
    """
    iop, pixel_spacing = _check_consistent(folder, slices)
    row, col = iop[:3], iop[3:]
    if np.linalg.norm(row) < 1e-6 or np.linalg.norm(col) < 1e-6:
        raise InputError(slices[0].path, f"ImageOrientationPatient {iop.tolist()} has a zero vector")
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    if abs(float(row @ col)) > 1e-3:
        raise InputError(slices[0].path, "ImageOrientationPatient row and column directions are not orthogonal")
    normal = np.cross(row, col)

    if not allow_tilt and not slicewise:
        for s in slices:
            tilt = float_or(s.ds, "GantryDetectorTilt", 0.0)
            if abs(tilt) > 1e-6:
                raise GantryTiltError(
                    s.path, f"acquired with gantry tilt (GantryDetectorTilt {tilt:g} deg); {_SLICEWISE_HINT}, "
                    "or pass allow_tilt=True to read the sheared geometry")

    positions = np.stack([_vector(s.ds, "ImagePositionPatient", 3, s.path) for s in slices])
    proj = positions @ normal
    order = np.argsort(proj, kind="stable")
    slices = [slices[i] for i in order]
    positions, proj = positions[order], proj[order]
    sx, sy = float(pixel_spacing[1]), float(pixel_spacing[0])  # PixelSpacing = (row spacing, column spacing)
    direction = np.column_stack([row, col, normal])

    if len(slices) == 1:
        thickness = float_or(slices[0].ds, "SliceThickness", 0.0)
        sz = thickness if thickness > 0 else 1.0
        return slices, (sx, sy, sz), positions[0], direction, None

    gaps = np.diff(proj)
    dup = np.flatnonzero(gaps <= 1e-3)
    if dup.size:
        i = int(dup[0])
        raise SliceSpacingError(
            folder, f"duplicate slice position {proj[i]:.3f} mm along the normal "
            f"({slices[i].path.name} and {slices[i + 1].path.name}); several acquisitions in one series?")
    expected = float(np.median(gaps))
    deviation = np.abs(gaps - expected) / expected
    bad = np.flatnonzero(deviation > spacing_tolerance)
    if bad.size and not slicewise:
        i = int(bad[np.argmax(deviation[bad])])
        raise SliceSpacingError(
            folder, f"uneven slice spacing: gap of {gaps[i]:.4g} mm between slice {i} ({slices[i].path.name}, "
            f"{proj[i]:.3f} mm) and slice {i + 1} ({slices[i + 1].path.name}, {proj[i + 1]:.3f} mm), "
            f"expected {expected:.4g} mm (tolerance {spacing_tolerance:.1%}); missing or extra slices? "
            f"{_SLICEWISE_HINT}")

    offsets = positions - positions[0]
    in_plane = np.abs(offsets @ np.column_stack([row, col]))
    drift = float(in_plane.max())
    tilted = drift > 0.1 * min(sx, sy)
    if slicewise and (tilted or bad.size):
        return slices, (sx, sy, expected), positions[0], direction, positions
    sz = float((proj[-1] - proj[0]) / (len(slices) - 1))
    if tilted:
        stack = offsets[-1] / np.linalg.norm(offsets[-1])
        angle = float(np.degrees(np.arccos(np.clip(stack @ normal, -1.0, 1.0))))
        if not allow_tilt:
            raise GantryTiltError(
                folder, f"slice stack is tilted {angle:.2f} deg from the image normal (gantry tilt or "
                f"sheared stack); {_SLICEWISE_HINT}, or pass allow_tilt=True to read the sheared geometry")
        direction = np.column_stack([row, col, stack])
        sz = float(np.linalg.norm(offsets[-1]) / (len(slices) - 1))
    return slices, (sx, sy, sz), positions[0], direction, None


def _padding_range(s: DicomSlice) -> tuple[float, float] | None:
    """The slice's PixelPaddingValue [.. PixelPaddingRangeLimit] as an HU range, or None."""
    value = s.ds.get("PixelPaddingValue")
    if value is None or value == "":
        return None
    limit = s.ds.get("PixelPaddingRangeLimit")
    low, high = float(value), float(value if limit in (None, "") else limit)
    hu = sorted((low * s.slope + s.intercept, high * s.slope + s.intercept))
    return hu[0], hu[1]


def read_dicom(
    path: str | os.PathLike,
    *,
    allow_tilt: bool = False,
    slicewise: bool = False,
    spacing_tolerance: float = 0.01,
    padding_values: Sequence[float] | None = PADDING_VALUES_HU,
    max_workers: int | None = None,
    files: Sequence[str | os.PathLike] | None = None,
    rescale_default: tuple[float, float] | None = None,
) -> Volume:
    """Read a CT series folder (recursive) or a single DICOM file into a :class:`Volume`.

    Args:
        path: series folder or DICOM file (named in error messages).
        files: read exactly these files of ``path`` instead of searching it (e.g. one series of a
            study folder, as chosen by :mod:`ctharmonize.io.series`).
        rescale_default: (slope, intercept) to assume for slices whose RescaleSlope/RescaleIntercept
            are missing or whose RescaleType is not HU (an explicit user override; default: refuse).
        allow_tilt: accept gantry-tilted stacks (the direction matrix is then sheared).
        slicewise: accept gantry tilt, missing slices and uneven spacing, keeping each slice's own
            position in ``Volume.slice_positions`` (for slice-wise harmonization, DICOM in -> DICOM out);
            duplicate positions are still refused. ``Volume.is_regular`` is then False for such a series,
            and NIfTI output or 3-D steps need :func:`ctharmonize.io.resample.resample_to_regular`.
            A series on a regular grid reads exactly as without it. Takes precedence over ``allow_tilt``.
        spacing_tolerance: allowed relative deviation of each slice gap from the median gap.
        padding_values: HU values treated as outside-FOV padding (besides PixelPaddingValue).
        max_workers: threads for reading files (default min(8, 2 * CPUs)).

    Returns:
        Volume with ``array`` float32 **HU** (Z, Y, X), LPS geometry, header summary,
        ``fov_mask`` (None when no padding was found), ``source_dataset`` and ``slice_datasets``;
        ``header.extra["orientation"]`` is the slice plane (see :mod:`ctharmonize.io.slice_orientation`).
    """
    path = Path(path)
    if files is not None:
        files, in_folder = [Path(f) for f in files], True
        if not files:
            raise EmptyInputError(path, "no files selected")
    elif path.is_dir():
        files = list_dicom_candidates(path)
        if not files:
            raise EmptyInputError(path, "folder holds no candidate DICOM files")
        in_folder = True
    else:
        files, in_folder = [path], False
    workers = max_workers or min(8, 2 * (os.cpu_count() or 1))
    if len(files) == 1 or workers == 1:
        loaded = [load_slice(f, in_folder, rescale_default=rescale_default) for f in files]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            loaded = list(pool.map(lambda f: load_slice(f, in_folder, rescale_default=rescale_default), files))
    slices = [item for item in loaded if isinstance(item, DicomSlice)]
    for item in loaded:
        if isinstance(item, SkippedFile):
            log.info("%s: skipped (%s)", item.path, item.reason)
    if not slices:
        skipped = [item for item in loaded if isinstance(item, SkippedFile)]
        reasons = sorted({item.reason for item in skipped})
        raise NotDicomError(path, f"no DICOM image files among {len(files)} files ({', '.join(reasons)})")

    _group_series(path, slices)
    _check_modality(slices)
    slices, spacing, origin, direction, positions = _geometry(path, slices, allow_tilt, spacing_tolerance, slicewise)

    nz, (ny, nx) = len(slices), slices[0].raw.shape
    array = np.empty((nz, ny, nx), dtype=np.float32)
    for k, s in enumerate(slices):
        np.multiply(s.raw, np.float32(s.slope), out=array[k], casting="unsafe")
        if s.intercept:
            array[k] += np.float32(s.intercept)

    padding = np.zeros(array.shape, dtype=bool)
    padding_hu: float | None = None
    for k, s in enumerate(slices):
        rng = _padding_range(s)
        if rng is not None and rng[1] <= _MAX_PADDING_HU:
            padding[k] |= (array[k] >= rng[0]) & (array[k] <= rng[1])
            if padding_hu is None:
                padding_hu = rng[0] if rng[0] == rng[1] else rng[1]
    for value in padding_values or ():
        hit = array == np.float32(value)
        if hit.any():
            padding |= hit
            if padding_hu is None:
                padding_hu = float(value)
    fov_mask = None
    if padding.any():
        array[padding] = AIR_HU
        fov_mask = ~padding

    first = slices[0]
    header = header_summary(first.ds, padding_value=padding_hu)
    header.extra["num_files"] = nz
    if any(s.rescale_assumed for s in slices):
        header.extra["rescale_assumed"] = list(rescale_default or ())  # the user's --assume_rescale
    header.extra["transfer_syntax"] = str(getattr(first.ds.file_meta, "TransferSyntaxUID", "")) or None
    header.extra["orientation"] = slice_orientation(direction)
    return Volume(array, spacing, tuple(origin), direction, header, fov_mask, source_dataset=first.ds,
                  slice_positions=positions, slice_datasets=tuple(s.ds for s in slices))

