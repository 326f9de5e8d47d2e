"""Parse one DICOM file into a CT slice (stored pixels + dataset without pixel data), or a skip note.

* ``list_dicom_candidates``: files under a folder that may be slices (hidden files, ``DICOMDIR`` and
  common non-image suffixes are left out by name).
* ``load_slice``: parse a file once (pixel data included), validate it and decode its pixels;
  corrupt files raise a one-line :class:`~ctharmonize.errors.CTHarmonizeError`, non-image DICOM
  (DICOMDIR, structured reports, presentation states) and non-DICOM files in a folder are skipped.

What is checked, in this order, before anything is decoded or allocated:

1. the file parses; a ``DICM`` file whose last element runs past the end is truncated (for the
   Deflated transfer syntax the inflated length is compared);
2. Rows, Columns, BitsAllocated, BitsStored, PixelRepresentation describe an image: present, Rows and
   Columns > 0, 1 <= BitsStored <= BitsAllocated, HighBit = BitsStored - 1 (when given);
3. Rows x Columns <= :data:`MAX_SLICE_PIXELS`; NumberOfFrames is 1 (multi-frame is refused);
   SamplesPerPixel is 1;
4. CT files only (Modality CT or a CT SOP class): BitsAllocated is 8, 16 or 32;
   PhotometricInterpretation is MONOCHROME2 or MONOCHROME1; RescaleSlope and RescaleIntercept are
   present and RescaleType (if any) is HU, else :class:`RescaleError` unless ``rescale_default``.
   This holds for every SOP Class: a Secondary Capture with Modality CT (where the rescale is
   optional) without them is refused too, because nothing says its values are HU. Non-CT files
   (e.g. MR) are not held to it; the reader refuses them for their Modality;
5. any file: RescaleSlope/RescaleIntercept (when present) are finite, the slope is non-zero, and the
   HU of every value BitsStored allows are finite in float32; uncompressed Pixel Data holds at least
   Rows x Columns x BitsAllocated bits; a JPEG 2000 codestream is well formed
   (:mod:`ctharmonize.io.jpeg2000_codestream`).

After decoding: the array is (Rows, Columns), its values lie in the range BitsStored and
PixelRepresentation allow, and the slice's HU lie within +-:data:`MAX_ABS_HU`.

MONOCHROME1 slices are read without inversion: the photometric interpretation applies to display
after the modality rescale (PS3.3 C.7.6.3.1.2), so HU = slope x stored + intercept either way.
Unused high bits (BitsStored < BitsAllocated) are masked and signed values sign-extended by pydicom.
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    JPEG2000,
    JPEG2000MC,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
)

from ctharmonize.errors import (
    ConfigError,
    CorruptFileError,
    ImageHeaderError,
    ImageTooLargeError,
    InputError,
    MissingPixelDataError,
    NotDicomError,
    RescaleError,
    UnsupportedFormatError,
)
from ctharmonize.io.fov import PADDING_VALUES_HU
from ctharmonize.io.jpeg2000_codestream import check_codestream

__all__ = ["DicomSlice", "SkippedFile", "load_slice", "list_dicom_candidates", "float_or",
           "first_error_line", "IGNORED_NAMES", "IGNORED_SUFFIXES", "CT_SOP_CLASSES", "DICOMDIR_SOP_CLASS",
           "CT_IMAGE_STORAGE", "MAX_SLICE_PIXELS", "MAX_ABS_HU", "MONOCHROME", "IMPLAUSIBLE_HU"]

log = logging.getLogger(__name__)

#: File names never treated as image slices.
IGNORED_NAMES = frozenset({"dicomdir", "lockfile", "version", "thumbs.db", "desktop.ini", "readme"})
#: File suffixes (lower case) never treated as image slices.
IGNORED_SUFFIXES = frozenset({
    ".txt", ".json", ".xml", ".csv", ".tsv", ".md", ".pdf", ".html", ".htm", ".log", ".ini", ".cfg",
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".zip", ".gz", ".bz2", ".tar", ".7z",
    ".nii", ".mha", ".mhd", ".nrrd", ".raw", ".exe", ".dll", ".inf", ".bat", ".sh", ".py", ".db",
})

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
CT_SOP_CLASSES = frozenset({CT_IMAGE_STORAGE, "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2"})
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

#: Largest Rows x Columns read (8192 x 8192); larger claims are refused before decoding.
MAX_SLICE_PIXELS = 8192 * 8192
#: Largest |HU| a slice may hold after rescale (CT values, even extended-scale metal, are far below).
MAX_ABS_HU = 1.0e6
#: PhotometricInterpretation values accepted for CT slices.
MONOCHROME = frozenset({"MONOCHROME2", "MONOCHROME1"})

_NATIVE_LE = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian})
_J2K_PART1 = frozenset({JPEG2000Lossless, JPEG2000, JPEG2000MCLossless, JPEG2000MC})
_J2K_HT = frozenset({"1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"})
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_TINY = float(np.finfo(np.float32).smallest_subnormal) / 2  # smaller magnitudes round to 0
_ASSUME = "pass --assume_rescale SLOPE,INTERCEPT (rescale_default=(slope, intercept)) to assume them"


@dataclass
class DicomSlice:
    """One decoded slice: ``raw`` (Rows, Columns) stored values; HU = raw * slope + intercept.

    ``rescale_assumed`` is True when slope/intercept came from ``rescale_default``, not the header.
    """

    path: Path
    ds: Dataset  # without PixelData
    raw: np.ndarray  # (Y, X) stored values
    slope: float
    intercept: float
    rescale_assumed: bool = False


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


# --- file level ---------------------------------------------------------------------------


def _syntax(ds: Dataset) -> UID | None:
    meta = getattr(ds, "file_meta", None)
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(value)) if value else None


def _inflated_length(path: Path, ds: Dataset) -> int | None:
    """Length of the inflated dataset of a Deflated file (None when the file meta group length is absent)."""
    group_length = ds.file_meta.get("FileMetaInformationGroupLength")
    if group_length is None:
        return None
    with open(path, "rb") as fh:
        fh.seek(128 + 4 + 12 + int(group_length))  # preamble, DICM, the group length element itself
        return len(zlib.decompress(fh.read(), -zlib.MAX_WBITS))


def _check_not_truncated(path: Path, ds: Dataset) -> None:
    """pydicom stops silently at end of file; a last element longer than the file means truncation.

    For the Deflated transfer syntax offsets count in the inflated dataset, so they are compared
    with its length (a cut-off deflate stream already fails to parse).
    """
    tags = list(ds.keys())
    if not tags:
        raise CorruptFileError(path, "truncated or corrupt DICOM file (no data elements after the file meta)")
    last = ds.get_item(max(tags))
    if isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF and last.value_tell is not None:
        if _syntax(ds) == DeflatedExplicitVRLittleEndian:
            size = _inflated_length(path, ds)
            if size is None:
                return
            where = "the inflated dataset ends"
        else:
            size = path.stat().st_size
            where = "the file ends"
        if last.value_tell + last.length > size:
            raise CorruptFileError(
                path, f"truncated DICOM file: element {last.tag} needs {last.length} bytes, "
                f"{where} after {size - last.value_tell}")


# --- header level -------------------------------------------------------------------------


def _int_attr(path: Path, ds: Dataset, keyword: str, required: bool = True) -> int | None:
    """An integer attribute as int; missing (None if not required), empty or non-integer raise."""
    try:
        value = ds.get(keyword)
    except Exception as err:  # malformed raw value
        raise ImageHeaderError(path, f"{keyword} cannot be read ({first_error_line(err)})") from err
    if value is None or value == "":
        if required:
            raise ImageHeaderError(path, f"{keyword} missing (Type 1); the header cannot describe an image")
        return None
    try:
        number = float(value)
        if not number.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise ImageHeaderError(path, f"{keyword} {value!r} is not an integer") from None
    return int(number)


@dataclass(frozen=True)
class _PixelFormat:
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    signed: bool

    @property
    def stored_range(self) -> tuple[int, int]:
        """(min, max) stored value that BitsStored and PixelRepresentation allow."""
        if self.signed:
            return -(1 << (self.bits_stored - 1)), (1 << (self.bits_stored - 1)) - 1
        return 0, (1 << self.bits_stored) - 1


def _pixel_format(path: Path, ds: Dataset, is_ct: bool) -> _PixelFormat:
    """Checks 2-4 of the module docstring (everything but rescale); see there."""
    rows, columns = _int_attr(path, ds, "Rows"), _int_attr(path, ds, "Columns")
    if rows <= 0 or columns <= 0:
        raise ImageHeaderError(path, f"Rows {rows}, Columns {columns}: the header describes an empty image")
    allocated = _int_attr(path, ds, "BitsAllocated")
    stored = _int_attr(path, ds, "BitsStored")
    representation = _int_attr(path, ds, "PixelRepresentation")
    allowed = (8, 16, 32) if is_ct else (1, 8, 16, 32, 64)
    if allocated not in allowed:
        raise ImageHeaderError(path, f"BitsAllocated {allocated} is not {', '.join(map(str, allowed[:-1]))} "
                                     f"or {allowed[-1]}{' for a CT slice' if is_ct else ''}")
    if not 1 <= stored <= allocated:
        raise ImageHeaderError(path, f"BitsStored {stored} is not between 1 and BitsAllocated {allocated}")
    high_bit = _int_attr(path, ds, "HighBit", required=False)
    if high_bit is not None and high_bit != stored - 1:
        raise ImageHeaderError(path, f"HighBit {high_bit} is not BitsStored - 1 ({stored - 1}); "
                                     "where the stored bits lie is ambiguous")
    if representation not in (0, 1):
        raise ImageHeaderError(path, f"PixelRepresentation {representation} is not 0 (unsigned) or 1 (signed)")
    if rows * columns > MAX_SLICE_PIXELS:
        raise ImageTooLargeError(
            path, f"the header claims {rows} x {columns} pixels (Rows x Columns = {rows * columns}) per slice, "
            f"more than the limit of {MAX_SLICE_PIXELS} (8192 x 8192); refused before decoding")
    frames = _int_attr(path, ds, "NumberOfFrames", required=False)
    if frames is not None and frames < 1:
        raise ImageHeaderError(path, f"NumberOfFrames {frames} is not a positive number")
    if frames is not None and frames > 1:
        raise UnsupportedFormatError(
            path, f"multi-frame DICOM ({frames} frames, e.g. Enhanced CT) is not supported; "
            "convert it to single-frame images (e.g. dcm2niix, dcmtk emf2sf) first")
    samples = _int_attr(path, ds, "SamplesPerPixel", required=False)
    if samples is not None and samples != 1:
        raise UnsupportedFormatError(path, f"colour image (SamplesPerPixel {samples}) is not a CT slice")
    if is_ct:
        photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        if not photometric:
            raise ImageHeaderError(path, "PhotometricInterpretation missing (Type 1)")
        if photometric not in MONOCHROME:
            raise ImageHeaderError(path, f"PhotometricInterpretation {photometric} is not a CT grayscale image "
                                         "(expected MONOCHROME2 or MONOCHROME1)")
    return _PixelFormat(rows, columns, allocated, stored, representation == 1)


def _rescale_value(path: Path, ds: Dataset, keyword: str) -> float | None:
    """RescaleSlope/RescaleIntercept as a finite float, None when missing or empty."""
    try:
        value = ds.get(keyword)
    except Exception as err:
        raise RescaleError(path, f"{keyword} cannot be read ({first_error_line(err)})") from err
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RescaleError(path, f"{keyword} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise RescaleError(path, f"{keyword} {value!r} is not a finite number")
    if abs(number) > _FLOAT32_MAX:
        raise RescaleError(path, f"{keyword} {value!r} overflows float32 (largest {_FLOAT32_MAX:.3g})")
    return number


def _rescale(path: Path, ds: Dataset, fmt: _PixelFormat, is_ct: bool,
             rescale_default: tuple[float, float] | None) -> tuple[float, float, bool]:
    """(slope, intercept, assumed) of a slice; see checks 4 and 5 of the module docstring."""
    slope = _rescale_value(path, ds, "RescaleSlope")
    intercept = _rescale_value(path, ds, "RescaleIntercept")
    assumed = False
    if is_ct:
        missing = [k for k, v in (("RescaleSlope", slope), ("RescaleIntercept", intercept)) if v is None]
        rescale_type = str(ds.get("RescaleType", "") or "").strip()
        problem = None
        if missing:
            sop = str(ds.get("SOPClassUID", "") or "").strip()
            why = ("Type 1 in CT Image" if sop in ("", CT_IMAGE_STORAGE) else
                   f"SOP Class {sop} does not require them, so its values need not be HU")
            problem = f"{'/'.join(missing)} missing ({why}); values cannot be read as HU"
        elif rescale_type and rescale_type.upper() != "HU":
            problem = f"RescaleType is {rescale_type!r}, not 'HU'; values cannot be read as HU"
        if problem is not None:
            if rescale_default is None:
                raise RescaleError(path, f"{problem}; {_ASSUME}")
            slope, intercept = (float(v) for v in rescale_default)
            assumed = True
            log.info("%s: %s; assuming RescaleSlope %g, RescaleIntercept %g", path, problem, slope, intercept)
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    if abs(slope) <= _FLOAT32_TINY:
        raise RescaleError(path, f"RescaleSlope {slope:g} is zero (in float32): every pixel would be "
                                 "RescaleIntercept")
    if _largest_abs_hu(fmt, slope, intercept) > _FLOAT32_MAX:
        raise RescaleError(path, f"RescaleSlope {slope:g} and RescaleIntercept {intercept:g} overflow float32 "
                                 f"for BitsStored {fmt.bits_stored} values {fmt.stored_range[0]} .. "
                                 f"{fmt.stored_range[1]}")
    return slope, intercept, assumed


def _largest_abs_hu(fmt: _PixelFormat, slope: float, intercept: float) -> float:
    """max |slope * v + intercept| over the stored values v that BitsStored allows."""
    low, high = fmt.stored_range
    return max(abs(slope * low + intercept), abs(slope * high + intercept))


def _check_rescale_default(rescale_default: tuple[float, float] | None) -> None:
    if rescale_default is None:
        return
    try:
        slope, intercept = (float(v) for v in rescale_default)
    except (TypeError, ValueError):
        raise ConfigError(None, f"rescale_default must be (slope, intercept), got {rescale_default!r}") from None
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0:
        raise ConfigError(None, f"rescale_default {rescale_default!r}: slope must be non-zero, both finite")


# --- pixel level --------------------------------------------------------------------------


def _native_int16(ds: Dataset, fmt: _PixelFormat) -> np.ndarray | None:
    """Fast path for the common case: uncompressed little-endian 16/16-bit pixels (else None)."""
    if _syntax(ds) not in _NATIVE_LE or fmt.bits_allocated != 16 or fmt.bits_stored != 16:
        return None
    data = ds.PixelData
    if not isinstance(data, bytes):
        return None
    dtype = "<i2" if fmt.signed else "<u2"
    return np.frombuffer(data, dtype=dtype, count=fmt.rows * fmt.columns).reshape(fmt.rows, fmt.columns)


def _check_encoded(path: Path, ds: Dataset, fmt: _PixelFormat) -> None:
    """Before decoding: enough uncompressed bytes, or a well-formed JPEG 2000 codestream."""
    syntax = _syntax(ds)
    data = ds.PixelData
    if syntax is None or not syntax.is_encapsulated:
        needed = (fmt.rows * fmt.columns * fmt.bits_allocated + 7) // 8
        if len(data) < needed:
            raise CorruptFileError(
                path, f"Pixel Data holds {len(data)} bytes; Rows x Columns x BitsAllocated "
                f"({fmt.rows} x {fmt.columns} x {fmt.bits_allocated} bits) need {needed}")
        return
    if syntax in _J2K_PART1 or syntax in _J2K_HT:
        try:
            frame = next(generate_frames(data, number_of_frames=1))
        except Exception as err:
            raise CorruptFileError(path, f"cannot split the encapsulated Pixel Data ({first_error_line(err)})") from err
        check_codestream(frame, fmt.rows, fmt.columns, 1, path, scan_entropy_data=syntax in _J2K_PART1)


def _decode(path: Path, ds: Dataset, fmt: _PixelFormat) -> np.ndarray:
    """The slice's stored values (Rows, Columns), validated against the header."""
    _check_encoded(path, ds, fmt)
    try:
        raw = _native_int16(ds, fmt)
        if raw is not None:
            return raw  # 16 of 16 bits: every value is in range, the shape is given
        raw = ds.pixel_array
    except Exception as err:
        raise CorruptFileError(path, f"cannot decode pixel data ({first_error_line(err)})") from err
    if raw.shape != (fmt.rows, fmt.columns):
        raise CorruptFileError(path, f"decoded pixel data has shape {raw.shape}; Rows x Columns is "
                                     f"({fmt.rows}, {fmt.columns})")
    if raw.dtype.kind in "iu" and raw.size:
        low, high = fmt.stored_range
        lo, hi = int(raw.min()), int(raw.max())
        if lo < low or hi > high:
            raise CorruptFileError(
                path, f"decoded values {lo} .. {hi} exceed what BitsStored {fmt.bits_stored} "
                f"({'signed' if fmt.signed else 'unsigned'}) allows ({low} .. {high}): corrupted pixel data")
    return raw


def _check_hu_range(path: Path, raw: np.ndarray, fmt: _PixelFormat, slope: float, intercept: float) -> None:
    """The slice's HU within +-MAX_ABS_HU (the data are scanned only if BitsStored allows more)."""
    if not raw.size or _largest_abs_hu(fmt, slope, intercept) <= MAX_ABS_HU:
        return
    ends = np.array([raw.min(), raw.max()], np.float64) * slope + intercept
    if np.max(np.abs(ends)) > MAX_ABS_HU:
        lo, hi = sorted(ends)
        raise RescaleError(path, f"RescaleSlope {slope:g} and RescaleIntercept {intercept:g} give HU {lo:.4g} .. "
                                 f"{hi:.4g}, beyond +-{MAX_ABS_HU:g}: not CT values")


#: Encapsulated syntaxes that reproduce the stored values exactly (padding stays exact padding).
_LOSSLESS_ENCAPSULATED = frozenset({
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
})
#: Below this, a decoded CT value that is not outside-FOV padding cannot be a measurement (air is -1000 HU).
IMPLAUSIBLE_HU = -2100.0


def _check_plausible_decode(path: Path, ds: Dataset, raw: np.ndarray, slope: float, intercept: float) -> None:
    """Losslessly compressed CT slices: refuse a decode with many values far below air that are not padding.

    JPEG 2000 carries no checksum and decoders accept bytes overwritten in the entropy-coded data; the
    gross cases decode to values down to the int16 limit. More than 0.1 % (at least 16) of the pixels
    below :data:`IMPLAUSIBLE_HU` that are neither PixelPaddingValue[..RangeLimit] nor -2048/-3024 HU
    padding is taken as corrupted pixel data. Lossy syntaxes are not checked (ringing at the FOV edge).
    """
    syntax = _syntax(ds)
    if syntax is None or str(syntax) not in _LOSSLESS_ENCAPSULATED or not raw.size:
        return
    hu = raw.astype(np.float64) * slope + intercept
    low = hu < IMPLAUSIBLE_HU
    if not low.any():
        return
    padding = np.isin(hu, PADDING_VALUES_HU)
    value, limit = ds.get("PixelPaddingValue"), ds.get("PixelPaddingRangeLimit")
    if value not in (None, ""):
        lo, hi = sorted((float(value), float(value if limit in (None, "") else limit)))
        padding |= (raw >= lo) & (raw <= hi)
    bad = low & ~padding
    count = int(np.count_nonzero(bad))
    if count > max(16, raw.size // 1000):
        raise CorruptFileError(
            path, f"decoded pixel data is not plausible CT: {count} pixels ({count / raw.size:.1%}) below "
            f"{IMPLAUSIBLE_HU:g} HU that are not padding (lowest {hu[bad].min():.0f} HU); the losslessly "
            "compressed pixel data are probably corrupted (JPEG 2000 carries no checksum)")


# --- entry point --------------------------------------------------------------------------


def load_slice(path: Path, in_folder: bool, *, rescale_default: tuple[float, float] | None = None
               ) -> DicomSlice | SkippedFile:
    """Parse one file (once), validate it and decode its pixels. Corrupt files raise; non-images are skipped.

    Args:
        path: the file.
        in_folder: True when the file was found in a folder (non-DICOM files and DICOMDIRs are then
            skipped instead of refused).
        rescale_default: (slope, intercept) to use for CT slices whose RescaleSlope/RescaleIntercept are
            missing or whose RescaleType is not HU (an explicit override; default: refuse). It replaces
            both values of such a slice; slices with a usable HU rescale keep their own.

    Returns:
        :class:`DicomSlice` (``raw`` (Rows, Columns) stored values, ``slope``, ``intercept``) or
        :class:`SkippedFile`.
    """
    _check_rescale_default(rescale_default)
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
        try:
            _check_not_truncated(path, ds)
        except zlib.error as err:
            raise CorruptFileError(path, f"corrupt deflated DICOM file ({first_error_line(err)})") from err
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
    if "PixelData" not in ds:
        raise UnsupportedFormatError(path, "float pixel data (e.g. a parametric map) is not a CT slice")

    fmt = _pixel_format(path, ds, is_ct)
    slope, intercept, assumed = _rescale(path, ds, fmt, is_ct, rescale_default)
    raw = _decode(path, ds, fmt)
    _check_hu_range(path, raw, fmt, slope, intercept)
    if is_ct:
        _check_plausible_decode(path, ds, raw, slope, intercept)
    del ds["PixelData"]
    return DicomSlice(path, ds, raw, slope, intercept, assumed)
