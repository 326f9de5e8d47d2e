"""Write a :class:`Volume` (HU) as a derived single-frame CT DICOM series (one file per slice).

Attributes written:

* Patient, study, equipment, frame-of-reference and acquisition attributes are copied from
  ``volume.source_dataset`` when present; otherwise a minimal valid CT header is synthesised
  (new StudyInstanceUID unless ``header.study_instance_uid`` is set, new FrameOfReferenceUID)
  and filled from ``volume.header`` (Manufacturer, ManufacturerModelName, ConvolutionKernel, KVP,
  Exposure, SliceThickness, SeriesDescription, PatientID).
* New SeriesInstanceUID and SOPInstanceUIDs; ImageType ``DERIVED\\SECONDARY\\AXIAL``;
  SeriesDescription + suffix; DerivationDescription naming the model and target kernel;
  ConvolutionKernel = ``target_kernel`` when given; ctharmonize listed in
  ContributingEquipmentSequence.
* Geometry from the volume: ImageOrientationPatient (direction columns 0, 1),
  ImagePositionPatient (origin + k * sz * direction column 2), PixelSpacing (sy, sx).
* Pixels: signed int16, RescaleSlope 1, RescaleIntercept 0 unless the HU range needs a shift;
  HU are rounded to integers and clipped to what int16 can hold.
* Outside ``fov_mask``: ``header.padding_value`` (default -3024 HU) and PixelPaddingValue;
  inside-FOV voxels at or below it are raised to padding + 1 HU so they never read as padding.
* ``header_overrides`` (DICOM keyword -> value) are applied last to every slice.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

import ctharmonize
from ctharmonize.errors import ConfigError, CTHarmonizeError, InputError, NonFiniteError
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.volume import Volume

__all__ = ["write_dicom", "DEFAULT_PADDING_HU", "PROTECTED_KEYWORDS", "compression_syntax"]

#: HU written outside the FOV when the volume's header has no padding value.
DEFAULT_PADDING_HU = -3024.0

# Attributes copied from the source series (when present), in module order.
_COPIED = (
    "SpecificCharacterSet",
    # Patient / Patient Study
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientBirthTime", "PatientSex",
    "PatientAge", "PatientSize", "PatientWeight", "EthnicGroup", "PatientComments",
    "PatientIdentityRemoved", "DeidentificationMethod",
    # General Study
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "StudyDescription",
    # General Series (the rest is new)
    "BodyPartExamined", "PatientPosition", "ProtocolName", "Laterality",
    # Frame of Reference
    "FrameOfReferenceUID", "PositionReferenceIndicator",
    # General Equipment
    "Manufacturer", "InstitutionName", "InstitutionAddress", "StationName", "InstitutionalDepartmentName",
    "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions",
    # General Acquisition / CT Image
    "AcquisitionNumber", "AcquisitionDate", "AcquisitionTime", "KVP", "SliceThickness",
    "DataCollectionDiameter", "ReconstructionDiameter", "DistanceSourceToDetector", "DistanceSourceToPatient",
    "GantryDetectorTilt", "TableHeight", "RotationDirection", "ExposureTime", "XRayTubeCurrent", "Exposure",
    "ExposureInuAs", "FilterType", "GeneratorPower", "FocalSpots", "ConvolutionKernel", "RevolutionTime",
    "SingleCollimationWidth", "TotalCollimationWidth", "TableSpeed", "TableFeedPerRotation",
    "SpiralPitchFactor", "CTDIvol", "ScanOptions",
    # VOI LUT, lossy history
    "WindowCenter", "WindowWidth", "LossyImageCompression", "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
)

#: Keywords that ``header_overrides`` may not change (geometry, pixels, identity of the new series).
PROTECTED_KEYWORDS = frozenset({
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "Rows", "Columns", "PixelData", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation",
    "RescaleSlope", "RescaleIntercept", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "InstanceNumber", "PixelPaddingValue", "PixelPaddingRangeLimit", "TransferSyntaxUID", "NumberOfFrames",
})


def _ds(value: float) -> str:
    return format_number_as_ds(float(value))


# The JPEG 2000 encoder (OpenJPEG, 6 resolution levels) needs slices of at least 32 x 32.
_MIN_J2K_SIZE = 32


def compression_syntax(compress: bool | str, shape_yx: tuple[int, int] = (512, 512)) -> str | None:
    """Transfer syntax for ``compress``: False -> None (uncompressed); True -> JPEG 2000 lossless when
    its encoder is available and slices are at least 32 x 32, else RLE lossless; ``"rle"``; ``"jpeg2000"``."""
    if compress is False or compress is None:
        return None
    choice = str(compress).lower()
    if compress is True:
        from pydicom.pixels import get_encoder

        fits = min(shape_yx) >= _MIN_J2K_SIZE
        return JPEG2000Lossless if fits and get_encoder(JPEG2000Lossless).is_available else RLELossless
    if choice in ("rle", str(RLELossless)):
        return RLELossless
    if choice in ("jpeg2000", "j2k", str(JPEG2000Lossless)):
        if min(shape_yx) < _MIN_J2K_SIZE:
            raise ConfigError(None, f"JPEG 2000 needs slices of at least {_MIN_J2K_SIZE} x {_MIN_J2K_SIZE}, "
                                    f"got {shape_yx[0]} x {shape_yx[1]}; use compress='rle'")
        return JPEG2000Lossless
    raise ConfigError(None, f"compress must be True, False, 'rle' or 'jpeg2000', not {compress!r}")


def _now() -> tuple[str, str]:
    now = _dt.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")


def _default_derivation(volume: Volume, model_name: str | None, target_kernel: str | None) -> str:
    text = f"Harmonized by ctharmonize {ctharmonize.__version__}"
    if model_name:
        text += f" with model {model_name}"
    if target_kernel:
        text += f" to target kernel {target_kernel}"
    source = volume.header
    if source.kernel or source.manufacturer:
        text += f"; source {source.manufacturer or 'unknown manufacturer'} kernel {source.kernel or 'unknown'}"
    return text


def _pixel_plan(volume: Volume) -> tuple[float, float | None]:
    """RescaleIntercept and padding HU (None without an FOV mask) for the whole series."""
    hu = np.asarray(volume.array, dtype=np.float32)
    mask = volume.fov_mask
    if mask is not None and not mask.all():
        pad_hu = float(np.rint(volume.header.padding_value if volume.header.padding_value is not None
                               else DEFAULT_PADDING_HU))
        inside_max = float(np.rint(np.max(hu, where=mask, initial=-np.inf))) if mask.any() else pad_hu
        lo, hi = pad_hu, max(inside_max, pad_hu + 1.0)
    else:
        pad_hu = None
        lo, hi = float(np.rint(hu.min())), float(np.rint(hu.max()))
    # Shift only when the HU range does not fit int16; a range wider than 65535 HU is clipped at the top.
    intercept = 0.0 if (lo >= -32768 and hi <= 32767) else lo + 32768.0
    return intercept, pad_hu


def _slice_pixels(volume: Volume, k: int, intercept: float, pad_hu: float | None) -> np.ndarray:
    """Stored int16 values (Y, X) of slice k: HU rounded, padding outside the FOV, minus the intercept."""
    hu = np.rint(np.asarray(volume.array[k], dtype=np.float64))
    if pad_hu is not None:
        hu = np.where(volume.fov_mask[k], np.maximum(hu, pad_hu + 1.0), pad_hu)
    return np.clip(hu - intercept, -32768, 32767).astype(np.int16)


def _base_dataset(
    volume: Volume,
    series_description_suffix: str,
    derivation_description: str | None,
    model_name: str | None,
    target_kernel: str | None,
) -> Dataset:
    src = volume.source_dataset if isinstance(volume.source_dataset, Dataset) else None
    h = volume.header
    date, time = _now()
    ds = Dataset()
    if src is not None:
        for keyword in _COPIED:
            if keyword in src:
                ds[keyword] = copy.deepcopy(src[keyword])
    # Type 2 attributes and header-summary fields when the source lacks them.
    if "StudyInstanceUID" not in ds:
        ds.StudyInstanceUID = h.study_instance_uid or generate_uid()
        ds.StudyDate, ds.StudyTime = date, time
    if "FrameOfReferenceUID" not in ds:
        ds.FrameOfReferenceUID = generate_uid()
    for keyword in ("PatientName", "PatientBirthDate", "PatientSex", "ReferringPhysicianName", "StudyID",
                    "AccessionNumber", "StudyDate", "StudyTime", "PositionReferenceIndicator",
                    "PatientPosition", "AcquisitionNumber"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    if "Laterality" not in ds and "BodyPartExamined" not in ds:  # type 2C; unknown body part
        ds.Laterality = ""
    if "PatientID" not in ds:
        ds.PatientID = h.patient_id or ""
    if "Manufacturer" not in ds:
        ds.Manufacturer = h.manufacturer or ""
    if "ManufacturerModelName" not in ds and h.manufacturer_model_name:
        ds.ManufacturerModelName = h.manufacturer_model_name
    if "ConvolutionKernel" not in ds and h.convolution_kernel:
        ds.ConvolutionKernel = list(h.convolution_kernel) if len(h.convolution_kernel) > 1 else h.convolution_kernel[0]
    if "KVP" not in ds:
        ds.KVP = _ds(h.kvp) if h.kvp is not None else ""
    if "Exposure" not in ds and h.exposure_mas is not None:
        ds.Exposure = int(round(h.exposure_mas))
    if "SliceThickness" not in ds:
        ds.SliceThickness = _ds(h.slice_thickness if h.slice_thickness is not None else volume.spacing[2])

    # New series.
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.SeriesInstanceUID = generate_uid()
    series_number = src.get("SeriesNumber") if src is not None else None
    try:
        ds.SeriesNumber = int(series_number) + 1000 if series_number not in (None, "") else 1000
    except (TypeError, ValueError):
        ds.SeriesNumber = 1000
    ds.SeriesDate, ds.SeriesTime = date, time
    base_desc = (str(src.get("SeriesDescription", "")).strip() if src is not None else "") or h.series_description
    ds.SeriesDescription = ((base_desc or "ctharmonize volume") + (series_description_suffix or ""))[:64]
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.DerivationDescription = (derivation_description or _default_derivation(volume, model_name, target_kernel))[:1024]
    if target_kernel:
        if len(target_kernel) > 16:
            raise ConfigError(None, f"target_kernel {target_kernel!r} is longer than the 16 characters "
                                    "DICOM allows in ConvolutionKernel")
        ds.ConvolutionKernel = target_kernel
    ds.ContentDate, ds.ContentTime = date, time
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.BurnedInAnnotation = "NO"
    if "LossyImageCompression" not in ds:
        ds.LossyImageCompression = "00"
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        ds.WindowCenter, ds.WindowWidth = ["-600", "40"], ["1500", "400"]
    equipment = Dataset()
    equipment.Manufacturer = "ctharmonize"
    equipment.SoftwareVersions = ctharmonize.__version__
    if model_name:
        equipment.ManufacturerModelName = str(model_name)[:64]
    equipment.ContributionDateTime = _dt.datetime.now().strftime("%Y%m%d%H%M%S")
    equipment.ContributionDescription = "Kernel harmonization" if (model_name or target_kernel) else "Format conversion"
    purpose = Dataset()
    purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = "109103", "DCM", "Modifying Equipment"
    equipment.PurposeOfReferenceCodeSequence = DicomSequence([purpose])
    ds.ContributingEquipmentSequence = DicomSequence([equipment])

    # Image plane and pixel description.
    direction = volume.direction
    ds.ImageOrientationPatient = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
    sx, sy, _ = volume.spacing
    ds.PixelSpacing = [_ds(sy), _ds(sx)]
    nz, ny, nx = volume.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ny, nx
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def _apply_overrides(ds: Dataset, overrides: Mapping[str, Any] | None) -> None:
    for keyword, value in (overrides or {}).items():
        if tag_for_keyword(keyword) is None:
            raise ConfigError(None, f"header_overrides: {keyword!r} is not a DICOM keyword")
        if keyword in PROTECTED_KEYWORDS:
            raise ConfigError(None, f"header_overrides: {keyword} is set by the writer and cannot be overridden")
        if value is None:
            if keyword in ds:
                del ds[keyword]
            continue
        try:
            if dictionary_VR(keyword) in ("DS",) and isinstance(value, (int, float)):
                value = _ds(value)
            setattr(ds, keyword, value)
        except Exception as err:
            raise ConfigError(None, f"header_overrides: invalid value {value!r} for {keyword} ({err})") from err


def write_dicom(
    volume: Volume,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    series_description_suffix: str = " harmonized",
    derivation_description: str | None = None,
    model_name: str | None = None,
    target_kernel: str | None = None,
    compress: bool | str = False,
    header_overrides: Mapping[str, Any] | None = None,
    max_workers: int | None = None,
) -> Path:
    """Write ``volume`` as a derived CT series in the folder ``path`` (created atomically).

    Args:
        volume: HU volume; ``source_dataset`` (pydicom Dataset) supplies patient/study attributes.
        path: output folder (must not exist unless ``overwrite``).
        series_description_suffix: appended to the source SeriesDescription.
        derivation_description: DerivationDescription; default names the model and target kernel.
        model_name: model named in DerivationDescription and ContributingEquipmentSequence.
        target_kernel: written as ConvolutionKernel (<= 16 characters).
        compress: False, True (JPEG 2000 lossless, else RLE), ``"rle"`` or ``"jpeg2000"``.
        header_overrides: DICOM keyword -> value applied last (None deletes the attribute).
        max_workers: threads for encoding and writing files.

    Returns:
        the folder path. Files are named ``CT00001.dcm`` ... in slice order.
    """
    path = Path(path)
    check_writable(path, overwrite)
    if path.exists() and not path.is_dir():
        raise InputError(path, "exists and is not a folder; a DICOM series is written as a folder")
    bad = int(volume.array.size - np.count_nonzero(np.isfinite(volume.array)))
    if bad:
        raise NonFiniteError(path, f"volume holds {bad} NaN or infinite voxels; refusing to write them")
    try:
        syntax = compression_syntax(compress, volume.shape[1:])
        base = _base_dataset(volume, series_description_suffix, derivation_description, model_name, target_kernel)
        intercept, pad_hu = _pixel_plan(volume)
        base.RescaleIntercept = _ds(intercept)
        if pad_hu is not None:
            base.add_new("PixelPaddingValue", "SS", int(pad_hu - intercept))
        _apply_overrides(base, header_overrides)
    except ConfigError as err:
        raise ConfigError(path, err.problem) from err

    nz = volume.shape[0]
    origin = np.asarray(volume.origin, dtype=np.float64)
    step = volume.direction[:, 2] * volume.spacing[2]
    normal = np.cross(volume.direction[:, 0], volume.direction[:, 1])

    def write_slice(k: int, folder: Path) -> None:
        ds = Dataset()
        for elem in base:  # shallow per-element copies: per-slice assignments never touch base
            ds.add(copy.copy(elem))
        position = origin + k * step
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.SliceLocation = _ds(float(position @ normal))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "CTHARMONIZE"
        ds.file_meta = meta
        pixels = _slice_pixels(volume, k, intercept, pad_hu)
        if syntax is None:
            ds.PixelData = pixels.astype("<i2", copy=False).tobytes()
        else:
            ds.compress(syntax, pixels, generate_instance_uid=False)
        ds.save_as(folder / f"CT{k + 1:05d}.dcm", enforce_file_format=True)

    try:
        with atomic_path(path, overwrite=overwrite, directory=True) as tmp:
            workers = max_workers or min(8, 2 * (os.cpu_count() or 1))
            if workers == 1 or nz == 1:
                for k in range(nz):
                    write_slice(k, tmp)
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    list(pool.map(lambda k: write_slice(k, tmp), range(nz)))
    except CTHarmonizeError:
        raise
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot write DICOM series ({type(err).__name__}: {err})") from err
    return path

