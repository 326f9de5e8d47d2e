"""``read_volume``: one entry point for DICOM series folders, DICOM files and NIfTI files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctharmonize.errors import EmptyInputError, InputError, UnsupportedFormatError
from ctharmonize.io.dicom_reader import read_dicom
from ctharmonize.io.fov import PADDING_VALUES_HU
from ctharmonize.io.nifti import is_nifti_path, read_nifti
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
    **dicom_options: Any,
) -> Volume:
    """Read a CT volume in HU from a DICOM series folder, a DICOM file or a NIfTI file.

    Args:
        path: a folder (searched recursively; must hold exactly one series), a single DICOM
            file (read as a one-slice volume), or ``*.nii`` / ``*.nii.gz``.
        allow_tilt: accept gantry-tilted DICOM stacks (sheared direction matrix).
        spacing_tolerance: allowed relative deviation of each DICOM slice gap from the median.
        padding_values: HU values treated as outside-FOV padding.
        max_workers: threads for reading DICOM files.
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
    if path.is_dir():
        if not any(path.iterdir()):
            raise EmptyInputError(path, "folder is empty")
        return read_dicom(path, allow_tilt=allow_tilt, spacing_tolerance=spacing_tolerance,
                          padding_values=padding_values, max_workers=max_workers, **dicom_options)
    if is_nifti_path(path):
        return read_nifti(path, padding_values=padding_values)
    if path.suffix.lower() in UNSUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(
            path, f"unsupported format {path.suffix!r}; expected a DICOM series folder, a DICOM file, "
            ".nii or .nii.gz")
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "file is empty")
    return read_dicom(path, allow_tilt=allow_tilt, spacing_tolerance=spacing_tolerance,
                      padding_values=padding_values, max_workers=max_workers, **dicom_options)
