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

import json
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ctharmonize.errors import (
    CorruptFileError,
    DimensionError,
    InputError,
    NonFiniteError,
    UnsupportedFormatError,
)
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.dicom_header import multi_str
from ctharmonize.io.fov import AIR_HU, PADDING_VALUES_HU, detect_padding_mask
from ctharmonize.io.volume import HeaderSummary, Volume

__all__ = ["read_nifti", "write_nifti", "is_nifti_path", "sidecar_path"]

_FLIP = np.diag([-1.0, -1.0, 1.0])


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


def _geometry_from_affine(path: Path, affine: np.ndarray):
    lps = _FLIP @ affine[:3, :3]
    origin = _FLIP @ affine[:3, 3]
    spacing = np.linalg.norm(lps, axis=0)
    if not np.all(np.isfinite(affine)) or np.any(spacing <= 0):
        raise InputError(path, f"invalid NIfTI affine (voxel sizes {spacing.tolist()})")
    return tuple(spacing), tuple(origin), lps / spacing


def read_nifti(path: str | os.PathLike, padding_values=PADDING_VALUES_HU) -> Volume:
    """Read a NIfTI file into a :class:`Volume` (float32 **HU**, (Z, Y, X), LPS geometry).

    A 4-D image with a single volume is accepted; 2-D images or several volumes raise
    :class:`DimensionError`; NaN or infinite values raise :class:`NonFiniteError`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise UnsupportedFormatError(path, f"not a NIfTI image ({type(img).__name__})")
        shape = tuple(img.shape)
        if len(shape) > 3 and all(s == 1 for s in shape[3:]):
            shape = shape[:3]
        if len(shape) != 3:
            raise DimensionError(path, f"image has shape {tuple(img.shape)}; expected one 3-D volume")
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
        affine = np.asarray(img.affine, dtype=np.float64)
    except (InputError, UnsupportedFormatError):
        raise
    except Exception as err:  # nibabel ImageFileError, EOFError, zlib/gzip errors, ...
        raise CorruptFileError(path, f"cannot read NIfTI ({type(err).__name__}: {err})") from err
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise NonFiniteError(path, f"{bad} voxels are NaN or infinite")
    spacing, origin, direction = _geometry_from_affine(path, affine)
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
    with atomic_path(path, overwrite=overwrite) as tmp:
        nib.save(img, str(tmp))
    if sidecar:
        with atomic_path(sidecar_path(path), overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(_sidecar_dict(volume), indent=2) + "\n", encoding="utf-8")
    return path
