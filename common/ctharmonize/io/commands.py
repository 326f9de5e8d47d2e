"""``ctharmonize info`` and ``ctharmonize convert``."""

from __future__ import annotations

import numpy as np

from ctharmonize import __version__
from ctharmonize.io.read import read_volume
from ctharmonize.io.volume import Volume
from ctharmonize.io.write import write_volume

__all__ = ["info", "convert", "describe"]


def _fmt(values, digits: int = 4) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}g}" for v in values) + ")"


def describe(volume: Volume) -> str:
    """Multi-line human-readable summary of a volume's geometry, intensities and header."""
    h = volume.header
    fov = 1.0 if volume.fov_mask is None else float(np.count_nonzero(volume.fov_mask)) / volume.fov_mask.size
    lines = [
        f"shape (Z, Y, X):      {volume.shape}",
        f"spacing (x, y, z) mm: {_fmt(volume.spacing)}",
        f"origin (LPS) mm:      {_fmt(volume.origin, 6)}",
        "direction (columns):  " + " ".join(_fmt(volume.direction[:, i]) for i in range(3)),
        f"HU min / mean / max:  {float(volume.array.min()):.1f} / {float(volume.array.mean()):.1f} / "
        f"{float(volume.array.max()):.1f}",
        f"inside FOV:           {fov:.1%}" + ("" if h.padding_value is None else f" (padding {h.padding_value:g} HU)"),
        f"manufacturer:         {h.manufacturer or '-'}" + (f" {h.manufacturer_model_name}" if h.manufacturer_model_name else ""),
        f"kernel:               {chr(92).join(h.convolution_kernel) or '-'}",
        f"kVp:                  {'-' if h.kvp is None else f'{h.kvp:g}'}",
        f"exposure mAs:         {'-' if h.exposure_mas is None else f'{h.exposure_mas:g}'}",
        f"slice thickness mm:   {'-' if h.slice_thickness is None else f'{h.slice_thickness:g}'}",
        f"series description:   {h.series_description or '-'}",
        f"patient ID:           {h.patient_id or '-'}",
        f"study UID:            {h.study_instance_uid or '-'}",
        f"series UID:           {h.series_instance_uid or '-'}",
    ]
    return "\n".join(lines)


def info(path: str, allow_tilt: bool = False) -> None:
    """Print the header summary and geometry of a CT volume.

    Args:
        path: DICOM series folder, DICOM file, or .nii/.nii.gz file.
        allow_tilt: read gantry-tilted DICOM series (sheared geometry) instead of refusing them.
    """
    print(describe(read_volume(path, allow_tilt=allow_tilt)))


def convert(input: str, output: str, overwrite: bool = False, compress: bool = False,
            nifti_dtype: str = "float32") -> str:
    """Convert a DICOM series or NIfTI file to NIfTI (.nii/.nii.gz) or a DICOM series folder.

    Args:
        input: DICOM series folder, DICOM file, or .nii/.nii.gz file.
        output: .nii/.nii.gz file, or a folder name for a DICOM series.
        overwrite: replace an existing output.
        compress: DICOM output only: lossless compression (JPEG 2000, or RLE for small slices).
        nifti_dtype: NIfTI output only: "float32" or "int16" HU.
    """
    volume = read_volume(input)
    out = write_volume(
        volume, output, overwrite=overwrite, series_description_suffix="", compress=compress,
        derivation_description=f"Format conversion by ctharmonize {__version__}", nifti_dtype=nifti_dtype,
    )
    return f"wrote {out}"
