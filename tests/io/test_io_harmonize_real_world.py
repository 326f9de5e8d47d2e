"""``ctharmonize harmonize`` on real-world series shapes: gantry tilt and missing slices go DICOM -> derived
DICOM slice by slice; NIfTI output needs --resample (refused before the model runs); reformats need
--allow_non_axial; a study folder needs --series when it holds several reconstructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus_harness import dciodvfy_errors, expect_refusal, run_cli
from scipy.spatial.transform import Rotation

from ctharmonize.io import read_volume

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "multipath_cyclegan_ct_harmonization"
HARMONIZE = ["harmonize", "--bundle", str(BUNDLE), "--source", "siemens_b50f", "--device", "cpu", "--quiet"]
GAP, TILT = 2.5, 12.0


@pytest.fixture(params=["tilt", "missing_slice"])
def irregular(request, tmp_path, series_writer, hu_volume):
    hu = hu_volume((5, 32, 32), seed=21)
    if request.param == "tilt":
        shift = np.tan(np.radians(TILT)) * GAP
        positions = [(-60.0, -70.0 + k * shift, 10.0 + k * GAP) for k in range(5)]
        extra = {"GantryDetectorTilt": f"{TILT:g}"}
    else:
        positions = [(-60.0, -70.0, z) for z in (0.0, 2.5, 5.0, 10.0, 12.5)]  # 7.5 missing
        extra = {}
    series_writer(tmp_path / "in" / "series", hu, positions=positions, spacing=(0.7, 0.8, GAP), extra=extra)
    return tmp_path / "in" / "series", np.asarray(positions)


def test_irregular_series_dicom_to_derived_dicom_keeps_each_slice(capsys, irregular, tmp_path):
    series, positions = irregular
    out = tmp_path / "out" / "harmonized"
    rc, _, err = run_cli(capsys, *HARMONIZE, "--input", series, "--out", out)
    assert rc == 0, err
    derived = sorted((pydicom.dcmread(f) for f in out.glob("*.dcm")), key=lambda d: int(d.InstanceNumber))
    source = sorted((pydicom.dcmread(f) for f in series.glob("*.dcm")),
                    key=lambda d: float(d.ImagePositionPatient[2]))
    assert len(derived) == len(source) == len(positions)
    for new, old, pos in zip(derived, source, positions, strict=True):
        np.testing.assert_allclose([float(v) for v in new.ImagePositionPatient], pos, atol=1e-4)
        np.testing.assert_allclose([float(v) for v in new.ImageOrientationPatient],
                                   [float(v) for v in old.ImageOrientationPatient], atol=1e-6)
        assert float(new.get("GantryDetectorTilt", 0)) == float(old.get("GantryDetectorTilt", 0))
        assert new.StudyInstanceUID == old.StudyInstanceUID and new.SeriesInstanceUID != old.SeriesInstanceUID
    assert dciodvfy_errors(out) == []


def test_irregular_series_to_nifti_needs_resample(capsys, irregular, tmp_path):
    series, _ = irregular
    out = tmp_path / "out" / "h.nii.gz"
    expect_refusal(capsys, [*HARMONIZE, "--input", series, "--out", out], str(series), "irregular", "--resample",
                   watch=tmp_path, absent=[out])
    rc, _, err = run_cli(capsys, *HARMONIZE, "--input", series, "--out", out, "--resample")
    assert rc == 0, err
    vol = read_volume(out)
    assert vol.is_regular
    np.testing.assert_allclose(vol.direction[:, 2], [0, 0, 1], atol=1e-6)  # orthogonal grid after resampling
    assert vol.spacing[2] == pytest.approx(GAP, rel=1e-4)


@pytest.mark.parametrize(("axis", "angle", "plane"), [("y", 90, "sagittal"), ("x", 90, "coronal")])
def test_reformats_need_allow_non_axial(capsys, tmp_path, series_writer, hu_volume, axis, angle, plane):
    series = tmp_path / "in" / plane
    series_writer(series, hu_volume((3, 16, 16), seed=5),
                  direction=Rotation.from_euler(axis, angle, degrees=True).as_matrix())
    out = tmp_path / "out" / "h"
    expect_refusal(capsys, [*HARMONIZE, "--input", series, "--out", out], f"{plane} reformat",
                   "--allow_non_axial", watch=tmp_path, absent=[out])
    rc, _, err = run_cli(capsys, *HARMONIZE, "--input", series, "--out", out, "--allow_non_axial")
    assert rc == 0, err


def test_study_folder_needs_series_when_it_holds_two_reconstructions(capsys, tmp_path, series_writer, hu_volume):
    study = tmp_path / "study"
    ge = {"Manufacturer": "GE MEDICAL SYSTEMS", "ManufacturerModelName": "LightSpeed VCT"}
    series_writer(study / "bone", hu_volume((3, 16, 16), seed=1),
                  extra={**ge, "ConvolutionKernel": "BONE", "SeriesNumber": 3, "SeriesDescription": "Chest BONE"})
    series_writer(study / "std", hu_volume((3, 16, 16), seed=2),
                  extra={**ge, "ConvolutionKernel": "STANDARD", "SeriesNumber": 2, "SeriesDescription": "Chest STD"})
    series_writer(study / "scout", hu_volume((1, 16, 16), seed=3),
                  extra={**ge, "ConvolutionKernel": "STANDARD", "SeriesNumber": 1,
                         "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]})
    args = ["harmonize", "--bundle", str(BUNDLE), "--device", "cpu", "--quiet", "--input", str(study)]
    out = tmp_path / "out" / "h.nii.gz"
    line = expect_refusal(capsys, [*args, "--out", out], "--series", "Chest BONE", "Chest STD", watch=tmp_path,
                          absent=[out])
    assert "localizer" in line  # the scout is listed as skipped, not as a candidate
    rc, text, err = run_cli(capsys, *args, "--out", out, "--series", "3")
    assert rc == 0, err
    assert "ge_bone -> siemens_b30f" in text  # source domain from the chosen series' header
    assert read_volume(out).shape == (3, 16, 16)
