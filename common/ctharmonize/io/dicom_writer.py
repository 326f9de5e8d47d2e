"""Write a :class:`Volume` (HU) as a derived single-frame CT DICOM series (one file per slice).

Attributes written:

* Patient, study, equipment, frame-of-reference and acquisition attributes are copied from
  ``volume.source_dataset`` when present and not empty (anonymizers often leave Type 1 UIDs
  empty); otherwise a minimal valid CT header is synthesised and filled from ``volume.header``
  (Manufacturer, ManufacturerModelName, ConvolutionKernel, KVP, Exposure, SliceThickness,
  SeriesDescription, PatientID). Type 2 attributes the source lacks are written empty.
* A missing or empty StudyInstanceUID is ``header.study_instance_uid`` or else generated
  deterministically (pydicom ``generate_uid(entropy_srcs=...)``) from the source's patient/study
  attributes (PatientID, PatientName, PatientBirthDate, StudyDate, StudyTime, AccessionNumber,
  StudyID, StudyDescription), so every slice, and every series of one anonymized study harmonized
  separately, gets the same one; when no study-level one (StudyDate, StudyTime, AccessionNumber,
  StudyID) is left, from the source series' UIDs instead (so unrelated anonymized studies, even of
  one patient, never share one). A generated UID is recorded in
  DerivationDescription. A missing FrameOfReferenceUID is generated likewise, once per source series.
* DeidentificationMethod (Type 1C) is written as unknown when the source says PatientIdentityRemoved
  YES without naming a method.
* Laterality (General Series, Type 2C): omitted when BodyPartExamined is a known unpaired part
  (CHEST, ABDOMEN ...), otherwise the source's R/L value or empty (unknown), as dciodvfy checks it.
* Per slice: the source slice's attributes in ``volume.slice_datasets`` (GantryDetectorTilt,
  SliceThickness, acquisition time, tube current, exposure, CTDIvol, table height) and a
  SourceImageSequence item referencing the source slice.
* New SeriesInstanceUID and SOPInstanceUIDs; ImageType ``DERIVED\\SECONDARY\\AXIAL``;
  SeriesDescription + suffix; DerivationDescription naming the model and target kernel (and, when
  ``header.extra["spacing_resampled"]`` says so, the in-plane resampling to the bundle's trained spacing);
  ConvolutionKernel = ``target_kernel`` when given; ctharmonize listed in
  ContributingEquipmentSequence.
* Geometry from the volume: ImageOrientationPatient (direction columns 0, 1, which must be
  orthonormal: a skewed grid is refused), ImagePositionPatient (``volume.slice_positions[k]`` for a
  slice-wise volume, else origin + k * sz * direction column 2), SliceLocation (position . normal),
  PixelSpacing (sy, sx).
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
from ctharmonize.errors import ConfigError, CTHarmonizeError, GeometryError, InputError, NonFiniteError
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
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
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

# Attributes that may differ from slice to slice; taken from each slice's own source dataset.
_PER_SLICE = (
    "GantryDetectorTilt", "SliceThickness", "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime",
    "XRayTubeCurrent", "ExposureTime", "Exposure", "ExposureInuAs", "CTDIvol", "TableHeight",
)

# Source attributes from which a missing StudyInstanceUID is derived (stable for one study).
_STUDY_IDENTIFIERS = ("PatientID", "PatientName", "PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber",
                      "StudyID", "StudyDescription")
_STUDY_LEVEL = ("StudyDate", "StudyTime", "AccessionNumber", "StudyID")

#: BodyPartExamined values of unpaired structures (DICOM PS3.16 Annex L, as dciodvfy knows them):
#: Laterality (Type 2C) must then be absent; for any other or no body part it must be present.
UNPAIRED_BODY_PARTS = frozenset({
    "ABDOMEN", "ABDOMENPELVIS", "AORTA", "BACK", "BLADDER", "BRAIN", "CEREBELLUM", "CERVIX", "CHEST",
    "CHESTABDOMEN", "CHESTABDPELVIS", "CIRCLEOFWILLIS", "COCCYX", "COLON", "CORONARYARTERY", "CSPINE",
    "CTSPINE", "DUODENUM", "ESOPHAGUS", "FACE", "GALLBLADDER", "HEAD", "HEADNECK", "HEART", "ILEUM", "ILIUM",
    "JAW", "JEJUNUM", "LARYNX", "LIVER", "LSPINE", "LSSPINE", "MAXILLA", "MEDIASTINUM", "MOUTH", "NECK",
    "NECKCHEST", "NECKCHESTABDOMEN", "NECKCHESTABDPELV", "NOSE", "PANCREAS", "PELVIS", "PENIS", "PHARYNX",
    "PROSTATE", "RECTUM", "SKULL", "SPINE", "SPLEEN", "STERNUM", "STOMACH", "THYMUS", "THYROID", "TONGUE",
    "TRACHEA", "TSPINE", "TLSPINE", "URETER", "URETHRA", "UTERUS", "VAGINA", "VULVA", "WHOLEBODY",
})

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
    if source.extra.get("spacing_resampled"):  # harmonized at the bundle's trained in-plane spacing
        text += f"; {source.extra['spacing_resampled']}"
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


def _filled(ds: Dataset, keyword: str) -> bool:
    """True when ``ds`` holds ``keyword`` with a non-empty value."""
    if keyword not in ds:
        return False
    value = ds[keyword].value
    return value is not None and str(value).strip() != "" and not (hasattr(value, "__len__") and len(value) == 0)


def _derived_uid(purpose: str, values: list[str]) -> str:
    """A UID derived from ``purpose`` and the non-empty ``values``; random when all are empty."""
    values = [v for v in values if v and v.strip()]
    return generate_uid(entropy_srcs=[f"ctharmonize-{purpose}", *values]) if values else generate_uid()


def _series_identity(src: Dataset | None) -> list[str]:
    """The source series' own UIDs (first slice), for UIDs that must be stable per source series."""
    if src is None:
        return []
    return [str(src.get(k, "")) for k in ("SeriesInstanceUID", "SOPInstanceUID")]


def _study_uid(src: Dataset | None) -> str:
    """StudyInstanceUID for a source that has none: from its patient and study identifiers when at least
    one study-level one (StudyDate, StudyTime, AccessionNumber, StudyID) is set, else its series UIDs."""
    if src is None:
        return generate_uid()
    study = [f"{k}={src.get(k)}" for k in _STUDY_IDENTIFIERS if _filled(src, k)]
    if not any(_filled(src, k) for k in _STUDY_LEVEL):
        study = []  # patient identifiers alone would merge all of a patient's studies into one
    return _derived_uid("study", study or _series_identity(src))


def _set_laterality(ds: Dataset) -> None:
    """Laterality (Type 2C): absent for an unpaired BodyPartExamined, else R/L from the source or empty."""
    body = str(ds.get("BodyPartExamined", "")).strip().upper()
    value = str(ds.get("Laterality", "")).strip().upper()
    if body in UNPAIRED_BODY_PARTS:
        if "Laterality" in ds:
            del ds.Laterality
    else:
        ds.Laterality = value if value in ("R", "L") else ""


def _check_geometry(volume: Volume, path: Path) -> None:
    """Refuse geometry that ImageOrientationPatient / ImagePositionPatient cannot express."""
    d = volume.direction
    if not np.all(np.isfinite(d)) or not np.all(np.isfinite(volume.positions_lps())):
        raise GeometryError(path, "volume geometry holds NaN or infinite values; cannot write ImagePositionPatient")
    row, col = d[:, 0], d[:, 1]
    lengths = (float(np.linalg.norm(row)), float(np.linalg.norm(col)))
    cosine = float(row @ col) / max(lengths[0] * lengths[1], 1e-12)
    if max(abs(lengths[0] - 1), abs(lengths[1] - 1)) > 1e-3 or abs(cosine) > 1e-3:
        raise GeometryError(
            path, f"the in-plane axes are not orthonormal (angle {np.degrees(np.arccos(np.clip(cosine, -1, 1))):.2f} deg, "
            f"lengths {lengths[0]:.4g}, {lengths[1]:.4g}): DICOM ImageOrientationPatient cannot express a skewed "
            "grid; resample the volume onto an orthogonal grid first")
    if volume.shape[0] > 1 and volume.slice_positions is None and abs(float(d[:, 2] @ volume.normal)) < 1e-3:
        raise GeometryError(path, "the slice axis lies in the image plane; cannot place the slices")


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
            if _filled(src, keyword):
                ds[keyword] = copy.deepcopy(src[keyword])
    # Type 1 UIDs the source lacks or left empty; Type 2 attributes and header-summary fields.
    generated_study = False
    if "StudyInstanceUID" not in ds:
        ds.StudyInstanceUID = h.study_instance_uid or _study_uid(src)
        generated_study = not h.study_instance_uid
        if src is None:  # a new study
            ds.StudyDate, ds.StudyTime = date, time
    if "FrameOfReferenceUID" not in ds:
        series = _series_identity(src)
        ds.FrameOfReferenceUID = _derived_uid("frame", [str(ds.StudyInstanceUID), *series]) if any(series) \
            else generate_uid()
    for keyword in ("PatientName", "PatientBirthDate", "PatientSex", "ReferringPhysicianName", "StudyID",
                    "AccessionNumber", "StudyDate", "StudyTime", "PositionReferenceIndicator",
                    "PatientPosition", "AcquisitionNumber"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    _set_laterality(ds)
    if str(ds.get("PatientIdentityRemoved", "")).upper() == "YES" and not (
            "DeidentificationMethod" in ds or "DeidentificationMethodCodeSequence" in ds):  # Type 1C
        ds.DeidentificationMethod = "unknown (the source is marked de-identified without a method)"
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
    derivation = derivation_description or _default_derivation(volume, model_name, target_kernel)
    if generated_study:
        derivation += "; StudyInstanceUID generated by ctharmonize (the source has none)"
    ds.DerivationDescription = derivation[:1024]
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


def _per_slice(ds: Dataset, source: Dataset | None, overrides: Mapping[str, Any] | None) -> None:
    """Copy the source slice's per-slice attributes and reference it in SourceImageSequence."""
    if not isinstance(source, Dataset):
        return
    for keyword in _PER_SLICE:
        if _filled(source, keyword) and keyword not in (overrides or {}):
            ds[keyword] = copy.deepcopy(source[keyword])
    if _filled(source, "SOPClassUID") and _filled(source, "SOPInstanceUID"):
        ref = Dataset()
        ref.ReferencedSOPClassUID = source.SOPClassUID
        ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
        purpose = Dataset()
        purpose.CodeValue, purpose.CodingSchemeDesignator = "121322", "DCM"
        purpose.CodeMeaning = "Source image for image processing operation"
        ref.PurposeOfReferenceCodeSequence = DicomSequence([purpose])
        ds.SourceImageSequence = DicomSequence([ref])


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
    _check_geometry(volume, path)
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
    positions = volume.positions_lps()
    normal = volume.normal
    sources = volume.slice_datasets if volume.slice_datasets is not None else (None,) * nz

    def write_slice(k: int, folder: Path) -> None:
        ds = Dataset()
        for elem in base:  # shallow per-element copies: per-slice assignments never touch base
            ds.add(copy.copy(elem))
        _per_slice(ds, sources[k], header_overrides)
        position = positions[k]
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
        with atomic_path(path, overwrite=overwrite, directory=True, record=True) as tmp:
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

