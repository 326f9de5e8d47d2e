"""``read_volume``: one entry point for DICOM series folders, DICOM files and NIfTI files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ctharmonize.errors import ConfigError, EmptyInputError, InputError, UnsupportedFormatError
from ctharmonize.io.dicom_reader import read_dicom
from ctharmonize.io.fov import PADDING_VALUES_HU
from ctharmonize.io.nifti import is_nifti_path, read_nifti
from ctharmonize.io.series import SeriesInfo, choose_series, is_dicomdir, scan_study, select_series
from ctharmonize.io.series_rules import SelectionRules
from ctharmonize.io.volume import Volume

__all__ = ["read_volume", "UNSUPPORTED_SUFFIXES"]

#: Image formats recognised by name that ctharmonize does not read (convert them to NIfTI first).
UNSUPPORTED_SUFFIXES = frozenset({
    ".mha", ".mhd", ".nrrd", ".nhdr", ".mgz", ".mgh", ".hdr", ".img", ".png", ".jpg", ".jpeg", ".tif",
    ".tiff", ".bmp", ".npy", ".npz", ".h5", ".hdf5", ".pt", ".pth", ".txt", ".json", ".csv", ".zip", ".gz",
})


def read_volume(
    path: str | os.PathLike,
    *,
    allow_tilt: bool = False,
    spacing_tolerance: float = 0.01,
    padding_values: Sequence[float] | None = PADDING_VALUES_HU,
    max_workers: int | None = None,
    series: str | int | None = None,
    rules: str | os.PathLike | Mapping | SelectionRules | None = None,
    **dicom_options: Any,
) -> Volume:
    """Read a CT volume in HU from a DICOM series folder, a DICOM file or a NIfTI file.

    Args:
        path: a folder (searched recursively), a DICOMDIR file, a single DICOM file (read as a
            one-slice volume), or ``*.nii`` / ``*.nii.gz``. A folder or DICOMDIR with several
            series is read through :func:`~ctharmonize.io.series.select_series`.
        allow_tilt: accept gantry-tilted DICOM stacks (sheared direction matrix).
        spacing_tolerance: allowed relative deviation of each DICOM slice gap from the median.
        padding_values: HU values treated as outside-FOV padding.
        max_workers: threads for reading DICOM files.
        series: DICOM only: the series to read, by SeriesNumber (digits) or SeriesInstanceUID.
        rules: DICOM only: series selection rules (MONAI Deploy format: file, JSON text or dict;
            default ``series_rules.json``, used when a folder holds several series).
        dicom_options: further keyword options of :func:`~ctharmonize.io.dicom_reader.read_dicom`
            (ignored for NIfTI input).

    Returns:
        :class:`Volume`: ``array`` float32 **HU**, shape (Z, Y, X); LPS geometry.

    Raises:
        CTHarmonizeError subclasses with a one-line ``"<path>: <problem>"`` message.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    options = dict(allow_tilt=allow_tilt, spacing_tolerance=spacing_tolerance, padding_values=padding_values,
                   max_workers=max_workers, **dicom_options)
    if path.is_dir():
        if not any(path.iterdir()):
            raise EmptyInputError(path, "folder is empty")
        return _read_study(path, series, rules, options)
    if is_nifti_path(path):
        if series is not None or rules is not None:
            raise ConfigError(path, "series selection (series/rules) applies to DICOM folders and DICOMDIRs, "
                                    "not to a NIfTI file")
        return read_nifti(path, padding_values=padding_values, allow_shear=allow_tilt)
    if path.suffix.lower() in UNSUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(
            path, f"unsupported format {path.suffix!r}; expected a DICOM series folder, a DICOM file, "
            ".nii or .nii.gz")
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "file is empty")
    if is_dicomdir(path) or series is not None or rules is not None:
        return _read_chosen(path, select_series(path, series, rules, max_workers=max_workers), options)
    return read_dicom(path, **options)


def _read_chosen(path: Path, chosen: SeriesInfo, options: dict[str, Any]) -> Volume:
    volume = read_dicom(path, files=chosen.files, **options)
    volume.header.extra["selected_series"] = chosen.describe()
    return volume


def _read_study(path: Path, series: str | int | None, rules: Any, options: dict[str, Any]) -> Volume:
    """A folder: read it as one series when it is one (a single pass, as before series selection
    existed); on failure, or when a series or rules are given, scan the headers and select."""
    if series is None and rules is None:
        try:
            return read_dicom(path, **options)
        except InputError:
            scan = scan_study(path, max_workers=options.get("max_workers"))
            if sum(s.has_image for s in scan.series) <= 1:
                raise  # a series folder: its own error, exactly as before
        return _read_chosen(path, choose_series(scan), options)
    return _read_chosen(path, select_series(path, series, rules, max_workers=options.get("max_workers")), options)
