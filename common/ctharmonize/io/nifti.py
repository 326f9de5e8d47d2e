"""NIfTI-1 (``.nii``, ``.nii.gz``) <-> :class:`Volume`.

NIfTI stores voxels as (i, j, k) = (X, Y, Z) with a RAS affine; :class:`Volume` uses (Z, Y, X)
and LPS (SimpleITK's convention), so the reader transposes the array and flips the first two
affine rows. Values are **HU** (scl_slope / scl_inter applied).

Outside-FOV padding values (-2048, -3024, -2000 HU) found in a NIfTI become ``fov_mask`` ==
False and -1024 HU, exactly as for DICOM. The writer stores ``volume.array`` as float32 HU by
default (``dtype="int16"`` rounds and clips). Outside-FOV voxels are written as they are in the
array (-1024 HU after reading) unless ``padding=True``, which writes the padding value
(``header.padding_value`` when it is one of those values, else -3024 HU) so that the FOV survives a
round trip. (Not the default: a label map made with ``volume.with_array(labels)`` keeps the image's
``fov_mask`` and must not get -3024 written into it.) A dcm2niix/BIDS JSON sidecar (``name.json`` next to ``name.nii[.gz]``) fills the
header summary when present; the writer writes one when ``sidecar=True``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ctharmonize.errors import (
    CorruptFileError,
    CTHarmonizeError,
    DimensionError,
    ImageTooLargeError,
    InputError,
    NiftiGeometryError,
    NonFiniteError,
    UnsupportedFormatError,
)
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.dicom_header import multi_str
from ctharmonize.io.fov import AIR_HU, PADDING_VALUES_HU, detect_padding_mask
from ctharmonize.io.resample import require_regular
from ctharmonize.io.volume import HeaderSummary, Volume

__all__ = ["read_nifti", "write_nifti", "is_nifti_path", "sidecar_path", "MAX_VOXELS", "ORTHOGONALITY_TOLERANCE"]

_FLIP = np.diag([-1.0, -1.0, 1.0])

#: largest |cos| between two columns of the direction matrix still taken as orthogonal (about 0.06 deg)
ORTHOGONALITY_TOLERANCE = 1e-3
#: largest voxel count read (a claimed size above it is refused before allocation; 2**31 float32 = 8 GiB)
MAX_VOXELS = 2**31


def is_nifti_path(path: str | os.PathLike) -> bool:
    """True for names ending in ``.nii`` or ``.nii.gz`` (case-insensitive)."""
    name = Path(path).name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def sidecar_path(path: str | os.PathLike) -> Path:
    """``name.json`` next to ``name.nii`` / ``name.nii.gz``."""
    path = Path(path)
    stem = path.name[: -len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
    return path.with_name(stem + ".json")


def _header_from_sidecar(path: Path) -> HeaderSummary:
    side = sidecar_path(path)
    if not side.is_file():
        return HeaderSummary()
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(side, f"cannot read JSON sidecar ({err})") from err
    if not isinstance(meta, dict):
        raise InputError(side, "JSON sidecar is not an object")

    def num(*keys: str) -> float | None:
        for key in keys:
            try:
                if meta.get(key) is not None:
                    return float(meta[key])
            except (TypeError, ValueError):
                pass
        return None

    def text(*keys: str) -> str | None:
        for key in keys:
            if meta.get(key) not in (None, ""):
                return str(meta[key])
        return None

    exposure = num("XRayExposure", "Exposure")
    if exposure is None:  # BIDS: XRayTubeCurrent in mA, ExposureTime in s
        current, seconds = num("XRayTubeCurrent"), num("ExposureTime")
        exposure = current * seconds if current is not None and seconds is not None else None
    return HeaderSummary(
        manufacturer=text("Manufacturer"),
        manufacturer_model_name=text("ManufacturersModelName", "ManufacturerModelName"),
        convolution_kernel=multi_str(meta.get("ConvolutionKernel")),
        kvp=num("KVP", "Kvp", "KVp"),
        exposure_mas=exposure,
        slice_thickness=num("SliceThickness"),
        study_instance_uid=text("StudyInstanceUID"),
        series_instance_uid=text("SeriesInstanceUID"),
        series_description=text("SeriesDescription"),
        patient_id=text("PatientID"),
        extra={"sidecar": str(side)},
    )


def _geometry_from_affine(path: Path, affine: np.ndarray, allow_shear: bool = False):
    """(spacing (sx, sy, sz) mm, origin LPS mm, direction 3x3) from a RAS voxel-to-world ``affine``.

    Refuses (:class:`NiftiGeometryError`) a non-finite or singular affine, and, unless ``allow_shear``,
    one whose axes are not orthogonal: ``|cos|`` between two direction columns above
    :data:`ORTHOGONALITY_TOLERANCE`. Orthogonal obliques and left-handed (flipped) axes are fine.
    """
    lps = _FLIP @ affine[:3, :3]
    origin = _FLIP @ affine[:3, 3]
    spacing = np.linalg.norm(lps, axis=0)
    if not np.all(np.isfinite(affine)) or np.any(spacing <= 0):
        raise NiftiGeometryError(path, f"invalid NIfTI affine (voxel sizes {spacing.tolist()})")
    direction = lps / spacing
    if not allow_shear:
        _check_orthogonal(path, direction)
    return tuple(spacing), tuple(origin), direction


_RESAMPLE_HINT = ("resample it onto an orthogonal grid first (e.g. SimpleITK Resample, ANTs antsApplyTransforms, "
                  "or convert the DICOM series with dcm2niix, which corrects gantry tilt)")


def _check_orthogonal(path: Path, direction: np.ndarray) -> None:
    """Refuse skewed in-plane axes and a slice axis not perpendicular to the image plane (tilt-like shear)."""
    col, row, stack = direction[:, 0], direction[:, 1], direction[:, 2]
    cos_inplane = float(np.dot(col, row))
    if abs(cos_inplane) > ORTHOGONALITY_TOLERANCE:
        angle = np.degrees(np.arccos(np.clip(cos_inplane, -1.0, 1.0)))
        raise NiftiGeometryError(path, f"skewed NIfTI affine: the in-plane axes are {angle:.2f} deg apart, not 90 "
                                       f"(|cos| {abs(cos_inplane):.4f} > {ORTHOGONALITY_TOLERANCE:g}); {_RESAMPLE_HINT}")
    if max(abs(float(np.dot(col, stack))), abs(float(np.dot(row, stack)))) > ORTHOGONALITY_TOLERANCE:
        normal = np.cross(col, row)
        tilt = np.degrees(np.arccos(np.clip(abs(float(np.dot(normal, stack))), 0.0, 1.0)))
        raise NiftiGeometryError(path, f"sheared NIfTI affine: the slice axis is tilted {tilt:.2f} deg from the normal "
                                       f"of the image plane (like a gantry-tilted stack); {_RESAMPLE_HINT}")


def _raw_header(path: Path, img) -> Any:
    """The header as stored in the file: nibabel's loader silently 'fixes' zero/negative pixdims to 1 / abs."""
    with nib.openers.ImageOpener(str(path)) as fobj:
        return img.header_class.from_fileobj(fobj, check=False)


def _check_pixdim(path: Path, raw) -> None:
    """Refuse zero, negative or NaN pixdim[1..3] when the affine nibabel uses is built from them.

    nibabel's choice (``Nifti1Header.get_best_affine``): sform if ``sform_code`` > 0, else the qform
    (quaternion scaled by pixdim) if ``qform_code`` > 0, else a pixdim-only fallback. Only the sform
    does not depend on pixdim.
    """
    if int(raw["sform_code"]) != 0:
        return
    pixdim = np.asarray(raw["pixdim"][1:4], dtype=np.float64)
    bad = [i for i, v in enumerate(pixdim, start=1) if not (np.isfinite(v) and v > 0)]
    if not bad:
        return
    values = ", ".join(f"pixdim[{i}] = {pixdim[i - 1]:g}" for i in bad)
    source = (f"the qform (qform_code {int(raw['qform_code'])}, no sform) is scaled by them"
              if int(raw["qform_code"]) != 0 else "there is no sform or qform (sform_code = qform_code = 0)")
    raise NiftiGeometryError(path, f"voxel size {pixdim[bad[0] - 1]:g} mm in pixdim[1..3] ({values}) and {source}; "
                                   "the file has no usable geometry")


def _check_size(path: Path, img) -> None:
    """Refuse, before any allocation, a header claiming more voxels than :data:`MAX_VOXELS` or more bytes
    than the file holds (``.nii``: data offset + bytes > file size; ``.nii.gz``: checked against the gzip
    ISIZE trailer, and when that disagrees (multi-member gzip, > 4 GiB) by counting the inflated bytes)."""
    shape = tuple(int(s) for s in img.shape)
    dtype = np.dtype(img.get_data_dtype())
    voxels = int(np.prod(shape, dtype=object)) if shape else 0
    offset = int(getattr(img.dataobj, "offset", 0))
    nbytes = voxels * dtype.itemsize
    claim = f"header claims shape {shape} {dtype.name} = {nbytes} bytes of voxel data"
    gzipped = path.name.lower().endswith(".gz")
    if not gzipped and offset + nbytes > path.stat().st_size:
        raise CorruptFileError(path, f"{claim} from byte {offset}, but the file has only {path.stat().st_size} "
                                     "bytes; the file is truncated or its header is wrong")
    if voxels > MAX_VOXELS:
        raise ImageTooLargeError(path, f"{claim} ({voxels} voxels), more than the {MAX_VOXELS} (2**31) voxels "
                                       "ctharmonize reads")
    if gzipped:
        inflated = _inflated_size(path, offset + nbytes)
        if inflated is not None:
            raise CorruptFileError(path, f"{claim} from byte {offset}, but the gzip stream inflates to only "
                                         f"{inflated} bytes; the file is truncated or its header is wrong")


def _inflated_size(path: Path, needed: int) -> int | None:
    """Bytes the gzip file inflates to when that is fewer than ``needed``; None when it holds enough.

    The ISIZE trailer (size mod 2**32 of the last gzip member) answers cheaply when it equals ``needed``
    mod 2**32; otherwise (truncated, wrong header, multi-member gzip, > 4 GiB) the stream is inflated in
    1 MiB chunks and counted, without a large allocation.
    """
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() >= 18:  # smallest gzip member: 10-byte header, empty deflate block, 8-byte trailer
            f.seek(-4, os.SEEK_END)
            if int.from_bytes(f.read(4), "little") == needed % 2**32:
                return None
    count = 0
    with gzip.open(path, "rb") as stream:
        while count < needed:
            chunk = stream.read(min(1 << 20, needed - count))
            if not chunk:
                return count
            count += len(chunk)
    return None


def read_nifti(path: str | os.PathLike, padding_values=PADDING_VALUES_HU, *, allow_shear: bool = False) -> Volume:
    """Read a NIfTI file into a :class:`Volume` (float32 **HU**, (Z, Y, X), LPS geometry).

    A 4-D image with a single volume is accepted. Refused with a one-line error naming the file:
    2-D images or several volumes (:class:`DimensionError`); NaN or infinite values
    (:class:`NonFiniteError`); zero/negative/NaN pixdims when no sform gives the geometry, a singular
    affine, or (unless ``allow_shear``) a sheared or skewed one (:class:`NiftiGeometryError`); a header
    claiming more bytes than the file holds (:class:`CorruptFileError`) or more than :data:`MAX_VOXELS`
    voxels (:class:`ImageTooLargeError`), both before the voxel data is allocated.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    log = nib.imageglobals.logger
    level = log.level
    log.setLevel(logging.CRITICAL + 1)  # nibabel logs "setting 0 dims to 1" to stderr; we refuse instead
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise UnsupportedFormatError(path, f"not a NIfTI image ({type(img).__name__})")
        shape = tuple(img.shape)
        if len(shape) > 3 and all(s == 1 for s in shape[3:]):
            shape = shape[:3]
        if len(shape) != 3:
            raise DimensionError(path, f"image has shape {tuple(img.shape)}; expected one 3-D volume")
        if min(shape) < 1:
            raise DimensionError(path, f"image has shape {tuple(img.shape)}: an axis is empty")
        _check_size(path, img)
        _check_pixdim(path, _raw_header(path, img))
        affine = np.asarray(img.affine, dtype=np.float64)
        spacing, origin, direction = _geometry_from_affine(path, affine, allow_shear)
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except CTHarmonizeError:
        raise
    except Exception as err:  # nibabel ImageFileError, EOFError, zlib/gzip errors, ...
        raise CorruptFileError(path, f"cannot read NIfTI ({type(err).__name__}: {err})") from err
    finally:
        log.setLevel(level)
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise NonFiniteError(path, f"{bad} voxels are NaN or infinite")
    array = np.ascontiguousarray(data.transpose(2, 1, 0))
    header = _header_from_sidecar(path)
    padding = detect_padding_mask(array, padding_values)
    fov_mask = None
    if padding.any():
        values, counts = np.unique(array[padding], return_counts=True)
        header.padding_value = float(values[np.argmax(counts)])
        array[padding] = AIR_HU
        fov_mask = ~padding
    return Volume(array, spacing, origin, direction, header, fov_mask)


def _sidecar_dict(volume: Volume) -> dict[str, Any]:
    h = volume.header
    meta = {
        "Modality": "CT",
        "Manufacturer": h.manufacturer,
        "ManufacturersModelName": h.manufacturer_model_name,
        "ConvolutionKernel": "\\".join(h.convolution_kernel) or None,
        "KVP": h.kvp,
        "XRayExposure": h.exposure_mas,
        "SliceThickness": h.slice_thickness,
        "SeriesDescription": h.series_description,
        "StudyInstanceUID": h.study_instance_uid,
        "SeriesInstanceUID": h.series_instance_uid,
        "PatientID": h.patient_id,
    }
    return {k: v for k, v in meta.items() if v is not None}


def write_nifti(
    volume: Volume,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    dtype: str = "float32",
    sidecar: bool = False,
    padding: bool = False,
) -> Path:
    """Write ``volume`` as NIfTI-1 (gzip when the name ends in ``.gz``); returns the path.

    Args:
        volume: HU volume.
        path: ``*.nii`` or ``*.nii.gz``.
        overwrite: replace an existing file.
        dtype: ``"float32"`` (HU as is) or ``"int16"`` (rounded, clipped to the int16 range).
        sidecar: also write the header summary as a BIDS-style ``name.json``.
        padding: write voxels outside ``volume.fov_mask`` as the padding value (see module docstring).
    """
    path = Path(path)
    require_regular(volume, path)  # irregular slice-wise geometry: resample explicitly first
    if dtype not in ("float32", "int16"):
        raise UnsupportedFormatError(path, f"NIfTI dtype must be 'float32' or 'int16', not {dtype!r}")
    check_writable(path, overwrite)
    if sidecar:
        check_writable(sidecar_path(path), overwrite)
    data = np.asarray(volume.array, dtype=np.float32)
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise NonFiniteError(path, f"volume holds {bad} NaN or infinite voxels; refusing to write them")
    if padding and volume.fov_mask is not None and not volume.fov_mask.all():
        pad = volume.header.padding_value
        pad = pad if pad is not None and pad in PADDING_VALUES_HU else -3024.0
        data = np.where(volume.fov_mask, data, np.float32(pad))
    if dtype == "int16":
        data = np.clip(np.rint(data), -32768, 32767).astype(np.int16)
    affine = volume.affine_ras()
    img = nib.Nifti1Image(np.ascontiguousarray(data.transpose(2, 1, 0)), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"ctharmonize HU"
    with atomic_path(path, overwrite=overwrite, record=True) as tmp:
        nib.save(img, str(tmp))
    if sidecar:
        with atomic_path(sidecar_path(path), overwrite=overwrite, record=True) as tmp:
            tmp.write_text(json.dumps(_sidecar_dict(volume), indent=2) + "\n", encoding="utf-8")
    return path
