"""Read a CT DICOM series (a folder, searched recursively, or one file) into a :class:`Volume` in HU.

* Every file is parsed once (pixel data included) in a thread pool.
* Slices are sorted by their ImagePositionPatient projected on the slice normal
  (ImageOrientationPatient row x column), never by file name or InstanceNumber.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ctharmonize.errors import (
    CorruptFileError,
    EmptyInputError,
    GantryTiltError,
    InputError,
    MissingPixelDataError,
    ModalityError,
    MultipleSeriesError,
    NotDicomError,
    SliceSpacingError,
    UnsupportedFormatError,
)
from ctharmonize.io.dicom_header import header_summary
from ctharmonize.io.fov import AIR_HU, PADDING_VALUES_HU
from ctharmonize.io.volume import Volume

__all__ = ["read_dicom", "list_dicom_candidates", "IGNORED_NAMES", "IGNORED_SUFFIXES"]

log = logging.getLogger(__name__)

#: File names never treated as image slices.
IGNORED_NAMES = frozenset({"dicomdir", "lockfile", "version", "thumbs.db", "desktop.ini", "readme"})
#: File suffixes (lower case) never treated as image slices.
IGNORED_SUFFIXES = frozenset({
    ".txt", ".json", ".xml", ".csv", ".tsv", ".md", ".pdf", ".html", ".htm", ".log", ".ini", ".cfg",
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".zip", ".gz", ".bz2", ".tar", ".7z",
    ".nii", ".mha", ".mhd", ".nrrd", ".raw", ".exe", ".dll", ".inf", ".bat", ".sh", ".py", ".db",
})

CT_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2"})
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

# Padding values at or above air cannot be told apart from air; they are not used as FOV padding.
_MAX_PADDING_HU = AIR_HU - 1.0


@dataclass
class _Slice:
    path: Path
    ds: Dataset  # without PixelData
    raw: np.ndarray  # (Y, X) stored values
    slope: float
    intercept: float


class _Skip:
    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason


def list_dicom_candidates(folder: str | os.PathLike) -> list[Path]:
    """Files under ``folder`` (recursive, sorted) that may be DICOM slices; ignored names are left out."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            lower = name.lower()
            if name.startswith(".") or lower in IGNORED_NAMES or Path(lower).suffix in IGNORED_SUFFIXES:
                continue
            out.append(Path(root) / name)
    return out


def _first_error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip(": ")


def _float_or(ds: Dataset, keyword: str, default: float) -> float:
    value = ds.get(keyword)
    try:
        return default if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return default


def _check_not_truncated(path: Path, ds: Dataset) -> None:
    """pydicom stops silently at end of file; a last element longer than the file means truncation."""
    tags = list(ds.keys())
    if not tags:
        raise CorruptFileError(path, "truncated or corrupt DICOM file (no data elements after the file meta)")
    last = ds.get_item(max(tags))
    if isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF and last.value_tell is not None:
        size = path.stat().st_size
        if last.value_tell + last.length > size:
            raise CorruptFileError(
                path, f"truncated DICOM file: element {last.tag} needs {last.length} bytes, "
                f"the file ends after {size - last.value_tell}")


_NATIVE_LE = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})


def _native_int16(ds: Dataset) -> np.ndarray | None:
    """Fast path for the common case: uncompressed little-endian 16/16-bit pixels (else None)."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax not in _NATIVE_LE or ds.get("BitsAllocated") != 16 or ds.get("BitsStored") != 16:
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    data = ds.PixelData
    if not isinstance(data, bytes) or len(data) < rows * cols * 2:
        return None  # let pydicom report the problem
    dtype = "<i2" if ds.get("PixelRepresentation") == 1 else "<u2"
    return np.frombuffer(data, dtype=dtype, count=rows * cols).reshape(rows, cols)


def _load(path: Path, in_folder: bool) -> _Slice | _Skip:
    """Parse one file (once) and decode its pixels. Corrupt files raise; non-images are skipped."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as err:
        raise InputError(path, f"cannot read file ({err.strerror or err})") from err
    has_marker = len(head) == 132 and head[128:132] == b"DICM"
    try:
        ds = pydicom.dcmread(path, force=not has_marker)
        if not has_marker and not any(k in ds for k in ("SOPClassUID", "PixelData", "Modality")):
            raise ValueError("no DICOM image attributes")
    except Exception as err:
        if has_marker:
            raise CorruptFileError(path, f"truncated or corrupt DICOM file ({_first_error_line(err)})") from err
        if in_folder:
            return _Skip(path, "not a DICOM file")
        raise NotDicomError(path, "not a DICOM file (no DICM marker and not parseable as DICOM)") from err

    if has_marker:
        _check_not_truncated(path, ds)
    media_class = ds.file_meta.get("MediaStorageSOPClassUID") if hasattr(ds, "file_meta") else None
    if media_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        if in_folder:
            return _Skip(path, "DICOMDIR")
        raise UnsupportedFormatError(path, "this is a DICOMDIR; pass the folder holding the series instead")
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    is_ct = str(ds.get("Modality", "")).upper() == "CT" or str(ds.get("SOPClassUID", "")) in CT_SOP_CLASSES
    if not has_pixels:
        if in_folder and not is_ct and "Rows" not in ds:
            return _Skip(path, f"DICOM without an image (Modality {ds.get('Modality', '?')})")
        raise MissingPixelDataError(path, "DICOM file has no Pixel Data element")
    frames = ds.get("NumberOfFrames")
    try:
        frames = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        frames = 1
    if frames > 1:
        raise UnsupportedFormatError(
            path, f"multi-frame DICOM ({frames} frames, e.g. Enhanced CT) is not supported; "
            "convert it to single-frame images (e.g. dcm2niix, dcmtk emf2sf) first")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise UnsupportedFormatError(path, f"colour image (SamplesPerPixel {ds.SamplesPerPixel}) is not a CT slice")
    try:
        raw = _native_int16(ds)
        if raw is None:
            raw = ds.pixel_array
    except Exception as err:
        raise CorruptFileError(path, f"cannot decode pixel data ({_first_error_line(err)})") from err
    if raw.ndim != 2:
        raise UnsupportedFormatError(path, f"pixel data has shape {raw.shape}; expected one 2-D slice")
    slope = _float_or(ds, "RescaleSlope", 1.0)
    intercept = _float_or(ds, "RescaleIntercept", 0.0)
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            del ds[keyword]
    return _Slice(path, ds, raw, slope, intercept)


def _vector(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray:
    value = ds.get(keyword)
    try:
        vec = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(path, f"missing or invalid {keyword}; cannot place the slice in space") from err
    if vec.shape != (n,) or not np.all(np.isfinite(vec)):
        raise InputError(path, f"invalid {keyword} {list(value)!r}; expected {n} finite numbers")
    return vec


def _group_series(folder: Path, slices: list[_Slice]) -> None:
    series: dict[str, list[_Slice]] = {}
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


def _check_modality(slices: list[_Slice]) -> None:
    for s in slices:
        modality = str(s.ds.get("Modality", "")).strip().upper()
        if modality != "CT" and not (not modality and str(s.ds.get("SOPClassUID", "")) in CT_SOP_CLASSES):
            raise ModalityError(s.path, f"Modality is {modality or 'missing'!r}, not 'CT'")


def _check_consistent(folder: Path, slices: list[_Slice]) -> tuple[np.ndarray, np.ndarray]:
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


def _geometry(
    folder: Path, slices: list[_Slice], allow_tilt: bool, spacing_tolerance: float
) -> tuple[list[_Slice], tuple[float, float, float], np.ndarray, np.ndarray]:
    """Sort slices along the normal and check spacing and tilt. Returns (sorted, spacing, origin, direction)."""
    iop, pixel_spacing = _check_consistent(folder, slices)
    row, col = iop[:3], iop[3:]
    if np.linalg.norm(row) < 1e-6 or np.linalg.norm(col) < 1e-6:
        raise InputError(slices[0].path, f"ImageOrientationPatient {iop.tolist()} has a zero vector")
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    if abs(float(row @ col)) > 1e-3:
        raise InputError(slices[0].path, "ImageOrientationPatient row and column directions are not orthogonal")
    normal = np.cross(row, col)

    if not allow_tilt:
        for s in slices:
            tilt = _float_or(s.ds, "GantryDetectorTilt", 0.0)
            if abs(tilt) > 1e-6:
                raise GantryTiltError(
                    s.path, f"acquired with gantry tilt (GantryDetectorTilt {tilt:g} deg); "
                    "pass allow_tilt=True to read the sheared geometry")

    positions = np.stack([_vector(s.ds, "ImagePositionPatient", 3, s.path) for s in slices])
    proj = positions @ normal
    order = np.argsort(proj, kind="stable")
    slices = [slices[i] for i in order]
    positions, proj = positions[order], proj[order]
    sx, sy = float(pixel_spacing[1]), float(pixel_spacing[0])  # PixelSpacing = (row spacing, column spacing)

    if len(slices) == 1:
        thickness = _float_or(slices[0].ds, "SliceThickness", 0.0)
        sz = thickness if thickness > 0 else 1.0
        return slices, (sx, sy, sz), positions[0], np.column_stack([row, col, normal])

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
    if bad.size:
        i = int(bad[np.argmax(deviation[bad])])
        raise SliceSpacingError(
            folder, f"uneven slice spacing: gap of {gaps[i]:.4g} mm between slice {i} ({slices[i].path.name}, "
            f"{proj[i]:.3f} mm) and slice {i + 1} ({slices[i + 1].path.name}, {proj[i + 1]:.3f} mm), "
            f"expected {expected:.4g} mm (tolerance {spacing_tolerance:.1%}); missing or extra slices?")

    offsets = positions - positions[0]
    in_plane = np.abs(offsets @ np.column_stack([row, col]))
    drift = float(in_plane.max())
    direction = np.column_stack([row, col, normal])
    sz = float((proj[-1] - proj[0]) / (len(slices) - 1))
    if drift > 0.1 * min(sx, sy):
        stack = offsets[-1] / np.linalg.norm(offsets[-1])
        angle = float(np.degrees(np.arccos(np.clip(stack @ normal, -1.0, 1.0))))
        if not allow_tilt:
            raise GantryTiltError(
                folder, f"slice stack is tilted {angle:.2f} deg from the image normal (gantry tilt or "
                "sheared stack); pass allow_tilt=True to read the sheared geometry")
        direction = np.column_stack([row, col, stack])
        sz = float(np.linalg.norm(offsets[-1]) / (len(slices) - 1))
    return slices, (sx, sy, sz), positions[0], direction


def _padding_range(s: _Slice) -> tuple[float, float] | None:
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
    spacing_tolerance: float = 0.01,
    padding_values: Sequence[float] | None = PADDING_VALUES_HU,
    max_workers: int | None = None,
) -> Volume:
    """Read a CT series folder (recursive) or a single DICOM file into a :class:`Volume`.

    Args:
        path: series folder or DICOM file.
        allow_tilt: accept gantry-tilted stacks (the direction matrix is then sheared).
        spacing_tolerance: allowed relative deviation of each slice gap from the median gap.
        padding_values: HU values treated as outside-FOV padding (besides PixelPaddingValue).
        max_workers: threads for reading files (default min(8, 2 * CPUs)).

    Returns:
        Volume with ``array`` float32 **HU** (Z, Y, X), LPS geometry, header summary,
        ``fov_mask`` (None when no padding was found) and ``source_dataset``.
    """
    path = Path(path)
    if path.is_dir():
        files = list_dicom_candidates(path)
        if not files:
            raise EmptyInputError(path, "folder holds no candidate DICOM files")
        in_folder = True
    else:
        files, in_folder = [path], False
    workers = max_workers or min(8, 2 * (os.cpu_count() or 1))
    if len(files) == 1 or workers == 1:
        loaded = [_load(f, in_folder) for f in files]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            loaded = list(pool.map(lambda f: _load(f, in_folder), files))
    slices = [item for item in loaded if isinstance(item, _Slice)]
    for item in loaded:
        if isinstance(item, _Skip):
            log.info("%s: skipped (%s)", item.path, item.reason)
    if not slices:
        skipped = [item for item in loaded if isinstance(item, _Skip)]
        reasons = sorted({item.reason for item in skipped})
        raise NotDicomError(path, f"no DICOM image files among {len(files)} files ({', '.join(reasons)})")

    _group_series(path, slices)
    _check_modality(slices)
    slices, spacing, origin, direction = _geometry(path, slices, allow_tilt, spacing_tolerance)

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
    header.extra["transfer_syntax"] = str(getattr(first.ds.file_meta, "TransferSyntaxUID", "")) or None
    return Volume(array, spacing, tuple(origin), direction, header, fov_mask, source_dataset=first.ds)

