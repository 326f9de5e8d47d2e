"""``ctharmonize info`` and ``ctharmonize convert``."""

from __future__ import annotations

import numpy as np

from ctharmonize import __version__
from ctharmonize.io.output_check import check_output
from ctharmonize.io.read import read_volume
from ctharmonize.io.slice_orientation import slice_orientation
from ctharmonize.io.volume import Volume
from ctharmonize.io.write import check_volume_output_path, write_volume

__all__ = ["convert", "describe", "info", "series"]


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
        f"orientation:          {h.extra.get('orientation') or slice_orientation(volume.direction)}",
        f"geometry:             {volume.irregularity() or 'regular grid'}",
    ]
    return "\n".join(lines)


def info(input: str, series: str | None = None, rules: str | None = None,  # noqa: A002 - the CLI flag name
         assume_rescale: str | None = None, allow_tilt: bool = False) -> None:
    """Print the header summary and geometry of a CT volume (irregular DICOM series are described slice-wise).

    Args:
        input: DICOM series folder, study folder, DICOMDIR, DICOM file, or .nii/.nii.gz file.
        series: SeriesInstanceUID or SeriesNumber of the series to read from a study folder.
        rules: series selection rules JSON (default: the shipped series_rules.json).
        assume_rescale: "SLOPE,INTERCEPT" to assume for slices without RescaleSlope/Intercept or with
            a RescaleType other than HU (default: refuse them).
        allow_tilt: read gantry-tilted DICOM series onto a sheared grid (default: slice-wise).
    """
    from ctharmonize.cli import rescale_pair

    volume = read_volume(input, series=series, rules=rules, allow_tilt=allow_tilt, slicewise=not allow_tilt,
                         rescale_default=rescale_pair(assume_rescale))
    print(describe(volume))


def convert(input: str, out: str, overwrite: bool = False, compress: bool = False,  # noqa: A002
            nifti_dtype: str = "float32", series: str | None = None, rules: str | None = None,
            resample: bool = False, assume_rescale: str | None = None) -> str:
    """Convert a DICOM series or NIfTI file to NIfTI (.nii/.nii.gz) or a DICOM series folder.

    Args:
        input: DICOM series folder, DICOM file, or .nii/.nii.gz file.
        out: .nii/.nii.gz file, or a folder name for a DICOM series (never the input, inside it or
            around it).
        overwrite: replace an earlier output of ctharmonize (nothing else is ever replaced).
        compress: DICOM output only: lossless compression (JPEG 2000, or RLE for small slices).
        nifti_dtype: NIfTI output only: "float32" or "int16" HU.
        series: SeriesInstanceUID or SeriesNumber of the series to read from a study folder.
        rules: series selection rules JSON (default: the shipped series_rules.json).
        resample: NIfTI output of a tilted or unevenly spaced series: resample it onto a regular grid
            (tilt correction, equidistant slices; see ctharmonize.io.resample). DICOM output keeps each
            slice's own geometry and never resamples.
        assume_rescale: "SLOPE,INTERCEPT" to assume for slices without rescale tags or with a
            RescaleType other than HU (default: refuse them).
    """
    from ctharmonize.cli import rescale_pair
    from ctharmonize.io.nifti import is_nifti_path
    from ctharmonize.io.resample import require_regular, resample_to_regular

    check_volume_output_path(out)
    check_output(out, [input], overwrite)
    volume = read_volume(input, series=series, rules=rules, slicewise=True,
                         rescale_default=rescale_pair(assume_rescale))
    if is_nifti_path(out) and not volume.is_regular:
        if not resample:
            require_regular(volume, input)
        volume = resample_to_regular(volume, path=input)
    written = write_volume(
        volume, out, overwrite=overwrite, series_description_suffix="", compress=compress,
        derivation_description=f"Format conversion by ctharmonize {__version__}", nifti_dtype=nifti_dtype,
    )
    return f"wrote {written}"


def series(input: str, rules: str | None = None) -> str:
    """List the series in a study folder or DICOMDIR and mark the one read by default.

    Args:
        input: study folder (searched recursively), DICOMDIR file, or DICOM file.
        rules: series selection rules JSON (MONAI Deploy DICOMSeriesSelectorOperator format);
            default: the shipped series_rules.json.
    """
    from ctharmonize.io.series import series_table

    return series_table(str(input), rules)
