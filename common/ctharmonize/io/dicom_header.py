"""Summarise a CT DICOM dataset's acquisition attributes into a :class:`HeaderSummary`."""

from __future__ import annotations

from typing import Any

from ctharmonize.io.volume import HeaderSummary

__all__ = ["header_summary", "exposure_mas", "multi_str"]


def _str(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _float(ds: Any, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, (str, bytes, int, float)) and hasattr(value, "__len__"):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def multi_str(value: Any) -> tuple[str, ...]:
    """A possibly multi-valued string element as a tuple of non-empty stripped strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        values = value.split("\\")
    else:
        try:
            values = [str(v) for v in value]
        except TypeError:
            values = [str(value)]
    return tuple(v.strip() for v in values if str(v).strip())


def exposure_mas(ds: Any) -> float | None:
    """Exposure in mAs: Exposure (0018,1152), else ExposureInuAs / 1000, else mA * ms / 1000."""
    value = _float(ds, "Exposure")
    if value is not None:
        return value
    value = _float(ds, "ExposureInuAs")
    if value is not None:
        return value / 1000.0
    current, time_ms = _float(ds, "XRayTubeCurrent"), _float(ds, "ExposureTime")
    if current is not None and time_ms is not None:
        return current * time_ms / 1000.0
    return None


def header_summary(ds: Any, padding_value: float | None = None) -> HeaderSummary:
    """Acquisition facts of one CT slice's dataset (pydicom.Dataset).

    ``padding_value`` is the outside-FOV padding in **HU** found by the reader, if any.
    """
    extra: dict[str, Any] = {}
    for keyword in ("StudyDate", "SeriesNumber", "BodyPartExamined", "ReconstructionDiameter",
                    "FilterType", "ReconstructionAlgorithm", "SoftwareVersions", "InstitutionName",
                    "StationName", "PatientPosition", "FrameOfReferenceUID"):
        value = ds.get(keyword)
        if value is not None and str(value).strip():
            extra[keyword] = value if isinstance(value, (int, float)) else str(value)
    return HeaderSummary(
        manufacturer=_str(ds, "Manufacturer"),
        manufacturer_model_name=_str(ds, "ManufacturerModelName"),
        convolution_kernel=multi_str(ds.get("ConvolutionKernel")),
        kvp=_float(ds, "KVP"),
        exposure_mas=exposure_mas(ds),
        slice_thickness=_float(ds, "SliceThickness"),
        study_instance_uid=_str(ds, "StudyInstanceUID"),
        series_instance_uid=_str(ds, "SeriesInstanceUID"),
        series_description=_str(ds, "SeriesDescription"),
        patient_id=_str(ds, "PatientID"),
        padding_value=padding_value,
        extra=extra,
    )
