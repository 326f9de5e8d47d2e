"""``write_volume``: NIfTI file or derived DICOM series folder, chosen by the output path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctharmonize.errors import UnsupportedFormatError
from ctharmonize.io.dicom_writer import write_dicom
from ctharmonize.io.nifti import is_nifti_path, write_nifti
from ctharmonize.io.read import UNSUPPORTED_SUFFIXES
from ctharmonize.io.volume import Volume

__all__ = ["write_volume", "check_volume_output_path"]


def check_volume_output_path(path: str | os.PathLike) -> Path:
    """Raise :class:`UnsupportedFormatError` unless ``path`` names a NIfTI file or a DICOM series folder."""
    path = Path(path)
    if not is_nifti_path(path) and path.suffix.lower() in UNSUPPORTED_SUFFIXES | {".dcm", ".ima"}:
        raise UnsupportedFormatError(
            path, f"cannot write {path.suffix!r}; give a .nii/.nii.gz file or a folder name for a DICOM series")
    return path


def write_volume(
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
    nifti_dtype: str = "float32",
    sidecar: bool = False,
    nifti_padding: bool = False,
) -> Path:
    """Write a HU volume; the format follows ``path``.

    ``*.nii`` / ``*.nii.gz`` -> NIfTI (``nifti_dtype`` float32 or int16 HU, sform = qform =
    ``volume.affine_ras()``, optional JSON ``sidecar``; ``nifti_padding=True`` writes the padding
    value outside ``fov_mask``, otherwise the array is written as it is). Any other path (no known file suffix) ->
    a folder holding a derived CT DICOM series (see :mod:`ctharmonize.io.dicom_writer` for the
    attributes; the DICOM-only keywords are ignored for NIfTI). Nothing is replaced unless
    ``overwrite=True``; the output appears atomically.

    Returns:
        the written path.
    """
    path = Path(path)
    if is_nifti_path(path):
        return write_nifti(volume, path, overwrite=overwrite, dtype=nifti_dtype, sidecar=sidecar,
                           padding=nifti_padding)
    check_volume_output_path(path)
    return write_dicom(
        volume, path, overwrite=overwrite, series_description_suffix=series_description_suffix,
        derivation_description=derivation_description, model_name=model_name, target_kernel=target_kernel,
        compress=compress, header_overrides=header_overrides,
    )
