"""Writing volumes: derived DICOM series (dciodvfy-clean) and NIfTI, round trips, overwrite."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from corpus_harness import dciodvfy_errors
from scipy.spatial.transform import Rotation

from ctharmonize.errors import ConfigError, NonFiniteError, OutputExistsError, UnsupportedFormatError
from ctharmonize.io import HeaderSummary, Volume, read_volume, write_volume

DCIODVFY = shutil.which("dciodvfy")


def test_dicom_round_trip_keeps_patient_study_and_geometry(tmp_path, series_writer, hu_volume):
    direction = Rotation.from_euler("y", 12, degrees=True).as_matrix()
    hu = np.rint(hu_volume((4, 9, 7), seed=2))
    src = series_writer(tmp_path / "src", hu, direction=direction, spacing=(0.75, 0.8, 1.25))
    vol = read_volume(tmp_path / "src")
    out = write_volume(vol, tmp_path / "out", model_name="mpcg-v1", target_kernel="siemens_b30f")
    files = sorted(out.iterdir())
    assert len(files) == 4
    back = read_volume(out)
    np.testing.assert_array_equal(back.array, hu)
    np.testing.assert_allclose(back.spacing, (0.75, 0.8, 1.25), atol=1e-6)
    np.testing.assert_allclose(back.origin, vol.origin, atol=1e-5)
    np.testing.assert_allclose(back.direction, direction, atol=1e-6)

    ds = pydicom.dcmread(files[0])
    old = pydicom.dcmread(src["files"][0])
    assert ds.PatientName == "Test^Patient" and ds.PatientID == "P-0001" and ds.PatientBirthDate == "19500101"
    assert ds.StudyInstanceUID == src["study_uid"] and ds.FrameOfReferenceUID == src["frame_uid"]
    assert ds.SeriesInstanceUID != src["series_uid"]
    new_sops = {pydicom.dcmread(f).SOPInstanceUID for f in files}
    assert len(new_sops) == 4 and not new_sops & {pydicom.dcmread(f).SOPInstanceUID for f in src["files"]}
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    assert ds.SeriesDescription == old.SeriesDescription + " harmonized"
    assert "mpcg-v1" in ds.DerivationDescription and "siemens_b30f" in ds.DerivationDescription
    assert ds.ConvolutionKernel == "siemens_b30f"
    assert ds.Manufacturer == "SIEMENS" and float(ds.KVP) == 120.0
    assert ds.PixelRepresentation == 1 and ds.BitsAllocated == 16 and float(ds.RescaleSlope) == 1.0
    assert "PixelPaddingValue" not in ds  # no FOV mask -> no padding


def test_dicom_written_series_passes_dciodvfy(tmp_path, ct_series):
    if DCIODVFY is None:
        pytest.fail("dciodvfy (dicom3tools) is required for this test; apt-get install dicom3tools")
    vol = read_volume(ct_series["path"])
    fov = np.ones(vol.shape, bool)
    fov[:, :3] = False
    vol.fov_mask = fov
    vol.header.padding_value = -2048.0
    out = write_volume(vol, tmp_path / "from_source", model_name="m", target_kernel="ge_standard")
    assert dciodvfy_errors(out) == []
    assert int(pydicom.dcmread(next(out.iterdir())).PixelPaddingValue) == -2048

    synthetic = Volume(np.zeros((2, 32, 32), np.float32), (0.5, 0.5, 1.0),
                       header=HeaderSummary(manufacturer="GE MEDICAL SYSTEMS", convolution_kernel=("BONE",),
                                            kvp=100.0, exposure_mas=45.5, slice_thickness=1.0))
    out = write_volume(synthetic, tmp_path / "synthetic", compress=True)
    assert dciodvfy_errors(out) == []


def test_dicom_fov_padding_round_trip(tmp_path, hu_volume):
    hu = np.rint(hu_volume((3, 8, 9), seed=4))
    fov = np.zeros(hu.shape, bool)
    fov[:, 1:7, 1:8] = True
    hu[:, 2, 2] = -3500.0  # inside FOV but below the padding value: must not become padding
    vol = Volume(hu, (0.7, 0.7, 2.0), fov_mask=fov, header=HeaderSummary(padding_value=-3024.0))
    out = write_volume(vol, tmp_path / "out")
    ds = pydicom.dcmread(sorted(out.iterdir())[0])
    stored = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(stored[~fov[0]], -3024.0)
    back = read_volume(out)
    np.testing.assert_array_equal(back.fov_mask, fov)
    expected = np.where(fov, np.maximum(hu, -3023.0), -1024.0)
    np.testing.assert_array_equal(back.array, expected)


def test_dicom_synthesized_header_and_overrides(tmp_path):
    hu = np.full((2, 4, 5), 40.0, np.float32)
    vol = Volume(hu, (1.0, 1.0, 2.0), header=HeaderSummary(
        manufacturer="Philips", convolution_kernel=("B", "x"), kvp=120.0, exposure_mas=99.6,
        slice_thickness=2.0, patient_id="SUBJ-7", series_description="phantom"))
    out = write_volume(vol, tmp_path / "out", series_description_suffix="",
                       header_overrides={"Manufacturer": "SIEMENS", "KVP": 100, "BodyPartExamined": "CHEST"})
    ds = pydicom.dcmread(sorted(out.iterdir())[0])
    assert ds.Manufacturer == "SIEMENS" and float(ds.KVP) == 100.0 and ds.BodyPartExamined == "CHEST"
    assert list(ds.ConvolutionKernel) == ["B", "x"] and int(ds.Exposure) == 100
    assert ds.PatientID == "SUBJ-7" and ds.SeriesDescription == "phantom"
    assert float(ds.SliceThickness) == 2.0
    back = read_volume(out)
    assert back.header.manufacturer == "SIEMENS" and back.header.kvp == 100.0
    np.testing.assert_array_equal(back.array, hu)
    with pytest.raises(ConfigError):
        write_volume(vol, tmp_path / "bad", header_overrides={"NotAKeyword": 1})
    with pytest.raises(ConfigError):
        write_volume(vol, tmp_path / "bad", header_overrides={"Rows": 3})
    assert not (tmp_path / "bad").exists()


def test_dicom_out_of_range_hu_uses_intercept(tmp_path):
    hu = np.array([[[-40000.0, 0.0], [1000.0, 20000.0]]], np.float32)  # span 60000 HU: needs a shift
    back = read_volume(write_volume(Volume(hu), tmp_path / "out"))
    np.testing.assert_array_equal(back.array, hu)


def test_dicom_compressed_round_trip(tmp_path, hu_volume):
    hu = np.rint(hu_volume((2, 32, 40), seed=6))
    for mode in ("rle", "jpeg2000"):
        out = write_volume(Volume(hu, (0.7, 0.7, 1.0)), tmp_path / mode, compress=mode)
        np.testing.assert_array_equal(read_volume(out).array, hu)


def test_nifti_round_trip_affine_and_values(tmp_path, hu_volume):
    hu = hu_volume((4, 6, 5), seed=7)
    direction = Rotation.from_euler("zx", [30, -5], degrees=True).as_matrix()
    vol = Volume(hu, (0.75, 0.5, 2.0), (10.0, -20.0, 30.0), direction)
    for name in ("v.nii", "v.nii.gz"):
        path = write_volume(vol, tmp_path / name)
        img = nib.load(path)
        # independent check of the affine: RAS = diag(-1,-1,1) @ (direction @ diag(spacing)), origin flipped
        expected = np.eye(4)
        expected[:3, :3] = np.diag([-1, -1, 1]) @ direction @ np.diag([0.75, 0.5, 2.0])
        expected[:3, 3] = [-10.0, 20.0, 30.0]
        np.testing.assert_allclose(img.get_sform(), expected, atol=1e-5)
        np.testing.assert_allclose(img.get_qform(), expected, atol=1e-5)
        assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
        np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), hu)  # (X,Y,Z) on disk
        back = read_volume(path)
        np.testing.assert_array_equal(back.array, hu)
        np.testing.assert_allclose(back.spacing, vol.spacing, rtol=1e-6)
        np.testing.assert_allclose(back.origin, vol.origin, atol=1e-5)
        np.testing.assert_allclose(back.direction, direction, atol=1e-6)


def test_nifti_fov_and_int16_and_sidecar(tmp_path):
    hu = np.array([[[-1000.4, 20.6], [3000.0, 40.0]]], np.float32)
    fov = np.array([[[True, True], [True, False]]])
    vol = Volume(hu, fov_mask=fov, header=HeaderSummary(manufacturer="GE MEDICAL SYSTEMS",
                                                         convolution_kernel=("BONE",), kvp=120.0))
    plain = read_volume(write_volume(vol, tmp_path / "plain.nii.gz"))  # default: array as it is
    np.testing.assert_array_equal(plain.array, hu)
    assert plain.fov_mask is None
    path = write_volume(vol, tmp_path / "v.nii.gz", nifti_dtype="int16", sidecar=True, nifti_padding=True)
    assert np.asarray(nib.load(path).dataobj).dtype == np.int16
    assert np.asarray(nib.load(path).dataobj)[1, 1, 0] == -3024  # padding on disk at (x=1, y=1, z=0)
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, [[[-1000.0, 21.0], [3000.0, -1024.0]]])
    np.testing.assert_array_equal(back.fov_mask, fov)
    assert back.header.kernel == "BONE" and back.header.manufacturer == "GE MEDICAL SYSTEMS"
    assert back.header.kvp == 120.0


def test_no_overwrite_without_flag(tmp_path, hu_volume, digest):
    vol = Volume(hu_volume((2, 4, 4)))
    for name in ("v.nii.gz", "series"):
        first = write_volume(vol, tmp_path / name)
        before = digest(first)
        with pytest.raises(OutputExistsError) as exc:
            write_volume(vol, tmp_path / name)
        assert str(tmp_path / name) in str(exc.value)
        assert digest(first) == before
        write_volume(vol.with_array(vol.array + 1), tmp_path / name, overwrite=True)
        np.testing.assert_array_equal(read_volume(first).array, np.rint(vol.array + 1)
                                      if name == "series" else vol.array + 1)
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [".series.ctharmonize.json", ".v.nii.gz.ctharmonize.json"]  # output records only


def test_unsupported_output_suffix(tmp_path, hu_volume):
    with pytest.raises(UnsupportedFormatError):
        write_volume(Volume(hu_volume((1, 2, 2))), tmp_path / "x.mha")
    assert not (tmp_path / "x.mha").exists()


def test_writer_does_not_modify_source(ct_series, tmp_path, digest):
    before = digest(ct_series["path"])
    vol = read_volume(ct_series["path"])
    array_before = vol.array.copy()
    write_volume(vol, tmp_path / "o")
    write_volume(vol, tmp_path / "o.nii.gz")
    assert digest(ct_series["path"]) == before
    np.testing.assert_array_equal(vol.array, array_before)


def test_refuses_non_finite_and_names_output(tmp_path):
    hu = np.zeros((2, 3, 3), np.float32)
    hu[1, 1, 1] = np.nan
    for name in ("v.nii.gz", "series"):
        with pytest.raises(NonFiniteError) as exc:
            write_volume(Volume(hu), tmp_path / name)
        assert str(tmp_path / name) in str(exc.value) and "1 NaN" in str(exc.value)
        assert not (tmp_path / name).exists()
    with pytest.raises(ConfigError) as exc:
        write_volume(Volume(np.zeros((1, 3, 3))), tmp_path / "k", target_kernel="x" * 17)
    assert str(tmp_path / "k") in str(exc.value)


def test_left_handed_volume_round_trips_physically(tmp_path, hu_volume):
    """direction with a flipped slice axis: the series is re-read bottom-up, same voxels in space."""
    hu = np.rint(hu_volume((3, 4, 5), seed=9))
    vol = Volume(hu, (0.5, 0.6, 2.0), (1.0, 2.0, 30.0), np.diag([1.0, 1.0, -1.0]))
    back = read_volume(write_volume(vol, tmp_path / "o"))
    np.testing.assert_array_equal(back.array, hu[::-1])
    np.testing.assert_allclose(back.origin, (1.0, 2.0, 30.0 - 2 * 2.0), atol=1e-6)
    np.testing.assert_allclose(back.direction, np.eye(3), atol=1e-9)
