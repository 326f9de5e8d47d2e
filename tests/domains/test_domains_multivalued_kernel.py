"""Multi-valued ConvolutionKernel: two known kernels are ambiguous (refused, ``--source`` resolves it);
one known kernel plus other values (Siemens iterative strength, Canon AIDR) still resolves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from ctharmonize.cli import main
from ctharmonize.domains import default_registry
from ctharmonize.errors import AmbiguousDomainError, UnknownDomainError
from ctharmonize.inference.source_domain import resolve_source_domain
from ctharmonize.io import read_volume


def _series(folder: Path, manufacturer: str, kernel: list[str], n: int = 2) -> Path:
    """A tiny CT series (n slices of 8 x 8) with the given Manufacturer and ConvolutionKernel."""
    folder.mkdir(parents=True)
    series_uid, study_uid = generate_uid(), generate_uid()
    for k in range(n):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, generate_uid(), "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.Manufacturer, ds.ConvolutionKernel = manufacturer, kernel
        ds.ImagePositionPatient = [0, 0, 2.5 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
        ds.PixelData = np.full((8, 8), 1000 + k, "<i2").tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CTImageStorage, ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"IM{k:04d}.dcm", enforce_file_format=True)
    return folder


def test_two_known_kernels_are_refused_listing_the_candidates(tmp_path):
    path = _series(tmp_path / "s", "GE MEDICAL SYSTEMS", ["STANDARD", "BONE"])
    vol = read_volume(path)
    assert vol.header.convolution_kernel == ("STANDARD", "BONE")
    with pytest.raises(AmbiguousDomainError) as info:
        resolve_source_domain(vol, path=path)
    line = str(info.value)
    assert isinstance(info.value, UnknownDomainError)  # callers catching the old error still do
    assert line.startswith(f"{path}: ConvolutionKernel 'STANDARD/BONE' names 2 known kernels") and "\n" not in line
    assert "ge_standard (STANDARD), ge_bone (BONE)" in line and "pass --source" in line


@pytest.mark.parametrize(
    "manufacturer, kernel, expected",
    [
        ("SIEMENS", ["B30f", "3"], "siemens_b30f"),  # the second value is the iterative strength
        ("SIEMENS", ["3", "B50f"], "siemens_b50f"),
        ("TOSHIBA", ["FC51", "AIDR 3D"], "toshiba_fc51"),
        ("GE MEDICAL SYSTEMS", ["BONE", "ASIR30"], "ge_bone"),
        ("GE MEDICAL SYSTEMS", ["BONE", " bone "], "ge_bone"),  # the same domain twice is not ambiguous
    ],
)
def test_one_known_kernel_among_other_values_resolves(tmp_path, manufacturer, kernel, expected):
    path = _series(tmp_path / "s", manufacturer, kernel)
    assert resolve_source_domain(read_volume(path), path=path) == expected


def test_ambiguity_is_per_vendor(tmp_path):
    """``B30f`` is Siemens, ``BONE`` is GE: with a Siemens manufacturer only ``B30f`` is a known kernel."""
    assert default_registry().resolve("SIEMENS", ["B30f", "BONE"]) == "siemens_b30f"
    with pytest.raises(AmbiguousDomainError, match="siemens_b30f \\(B30f\\), ge_bone \\(BONE\\)"):
        default_registry().resolve(None, ["B30f", "BONE"])  # no manufacturer: every vendor


def test_explicit_source_wins_over_an_ambiguous_header(tmp_path):
    path = _series(tmp_path / "s", "GE MEDICAL SYSTEMS", ["STANDARD", "BONE"])
    vol = read_volume(path)
    assert resolve_source_domain(vol, "ge_bone", path=path) == "ge_bone"
    assert resolve_source_domain(vol, "ge_standard", ["ge_standard", "siemens_b30f"], path=path) == "ge_standard"
    with pytest.raises(UnknownDomainError, match="not one this model was trained on"):
        resolve_source_domain(vol, "ge_bone", ["ge_standard", "siemens_b30f"], path=path)


def test_domains_command_one_line_error(tmp_path, capsys):
    path = _series(tmp_path / "s", "GE MEDICAL SYSTEMS", ["STANDARD", "BONE"])
    capsys.readouterr()
    assert main(["domains", "--input", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err and not out
    assert str(path) in lines[0] and "ge_standard (STANDARD), ge_bone (BONE)" in lines[0] and "--source" in lines[0]
