"""Parse one DICOM file into a CT slice (stored pixels + dataset without pixel data), or a skip note.

* ``list_dicom_candidates``: files under a folder that may be slices (hidden files, ``DICOMDIR`` and
  common non-image suffixes are left out by name).
* ``load_slice``: parse a file once (pixel data included), validate it and decode its pixels;
  corrupt files raise a one-line :class:`~ctharmonize.errors.CTHarmonizeError`, non-image DICOM
  (DICOMDIR, structured reports, presentation states) and non-DICOM files in a folder are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ctharmonize.errors import (
    CorruptFileError,
    InputError,
    MissingPixelDataError,
    NotDicomError,
    UnsupportedFormatError,
)

__all__ = ["DicomSlice", "SkippedFile", "load_slice", "list_dicom_candidates", "float_or",
           "first_error_line", "IGNORED_NAMES", "IGNORED_SUFFIXES", "CT_SOP_CLASSES", "DICOMDIR_SOP_CLASS"]

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



@dataclass
class DicomSlice:
    path: Path
    ds: Dataset  # without PixelData
    raw: np.ndarray  # (Y, X) stored values
    slope: float
    intercept: float


class SkippedFile:
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


def first_error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip(": ")


def float_or(ds: Dataset, keyword: str, default: float) -> float:
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


def load_slice(path: Path, in_folder: bool, *, rescale_default: tuple[float, float] | None = None) -> DicomSlice | SkippedFile:
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
            raise CorruptFileError(path, f"truncated or corrupt DICOM file ({first_error_line(err)})") from err
        if in_folder:
            return SkippedFile(path, "not a DICOM file")
        raise NotDicomError(path, "not a DICOM file (no DICM marker and not parseable as DICOM)") from err

    if has_marker:
        _check_not_truncated(path, ds)
    media_class = ds.file_meta.get("MediaStorageSOPClassUID") if hasattr(ds, "file_meta") else None
    if media_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        if in_folder:
            return SkippedFile(path, "DICOMDIR")
        raise UnsupportedFormatError(path, "this is a DICOMDIR; pass the folder holding the series instead")
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    is_ct = str(ds.get("Modality", "")).upper() == "CT" or str(ds.get("SOPClassUID", "")) in CT_SOP_CLASSES
    if not has_pixels:
        if in_folder and not is_ct and "Rows" not in ds:
            return SkippedFile(path, f"DICOM without an image (Modality {ds.get('Modality', '?')})")
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
        raise CorruptFileError(path, f"cannot decode pixel data ({first_error_line(err)})") from err
    if raw.ndim != 2:
        raise UnsupportedFormatError(path, f"pixel data has shape {raw.shape}; expected one 2-D slice")
    slope = float_or(ds, "RescaleSlope", 1.0)
    intercept = float_or(ds, "RescaleIntercept", 0.0)
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            del ds[keyword]
    return DicomSlice(path, ds, raw, slope, intercept)
