"""Reading DICOM series: values, geometry, sorting, header, compression, padding, tilt."""

from __future__ import annotations

import base64
import os

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, JPEGLSLossless, RLELossless
from scipy.spatial.transform import Rotation

from ctharmonize.errors import GantryTiltError
from ctharmonize.io import read_volume


def test_values_geometry_and_header(ct_series):
    vol = read_volume(ct_series["path"])
    assert vol.array.dtype == np.float32 and vol.array.shape == (5, 12, 10)
    np.testing.assert_array_equal(vol.array, ct_series["hu"])
    np.testing.assert_allclose(vol.spacing, (0.7, 0.8, 2.5))
    np.testing.assert_allclose(vol.origin, (-100.0, -120.0, 50.0))
    np.testing.assert_allclose(vol.direction, np.eye(3))
    h = vol.header
    assert h.manufacturer == "SIEMENS"
    assert h.manufacturer_model_name == "SOMATOM Definition Flash"
    assert h.convolution_kernel == ("Br40d", "3") and h.kernel == "Br40d"
    assert h.kvp == 120.0
    assert h.exposure_mas == pytest.approx(200 * 500 / 1000)  # mA * ms / 1000, no Exposure tag
    assert h.slice_thickness == 2.5
    assert h.study_instance_uid == ct_series["study_uid"]
    assert h.series_instance_uid == ct_series["series_uid"]
    assert h.series_description == "Chest 1.0 B50f"
    assert h.patient_id == "P-0001"
    assert vol.fov_mask is None and h.padding_value is None
    assert "PixelData" not in vol.source_dataset
    assert vol.source_dataset.PatientName == "Test^Patient"


def test_exposure_tag_preferred(tmp_path, series_writer, hu_volume):
    series_writer(tmp_path / "s", hu_volume((2, 4, 4)), extra={"Exposure": 321})
    assert read_volume(tmp_path / "s").header.exposure_mas == 321.0


def test_sorting_ignores_names_and_instance_numbers(tmp_path, series_writer, hu_volume):
    """Files named in a random order, positions decreasing with file index: sorted by position."""
    hu = hu_volume((6, 8, 7), seed=1)
    rng = np.random.default_rng(3)
    names = [f"{n:04d}" for n in rng.permutation(6)]  # no extension, shuffled lexical order
    positions = [(-100.0, -120.0, 50.0 - 2.5 * k) for k in range(6)]
    series_writer(tmp_path / "s", hu, names=names, positions=positions)
    vol = read_volume(tmp_path / "s")
    np.testing.assert_array_equal(vol.array, hu[::-1])  # ascending z = reversed file order
    np.testing.assert_allclose(vol.origin, (-100.0, -120.0, 50.0 - 2.5 * 5))
    np.testing.assert_allclose(vol.spacing[2], 2.5)


def test_recursive_folder_and_ignored_files(tmp_path, series_writer, hu_volume):
    hu = hu_volume((3, 6, 6))
    series_writer(tmp_path / "study" / "a" / "b", hu)
    (tmp_path / "study" / "notes.txt").write_text("hello")
    (tmp_path / "study" / ".DS_Store").write_bytes(b"\x00\x01junk")
    (tmp_path / "study" / "a" / "README").write_text("not dicom")
    (tmp_path / "study" / "a" / "b" / "garbage.bin").write_bytes(b"definitely not dicom" * 10)
    np.testing.assert_array_equal(read_volume(tmp_path / "study").array, hu)


def test_dicomdir_is_ignored(tmp_path, series_writer, hu_volume):
    from pydicom.dataset import Dataset, FileMetaDataset

    hu = hu_volume((2, 5, 5))
    series_writer(tmp_path / "s", hu)
    dd = Dataset()
    dd.file_meta = FileMetaDataset()
    dd.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dd.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    dd.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dd.FileSetID = "X"
    dd.save_as(tmp_path / "s" / "dir_record", enforce_file_format=True)  # name does not say DICOMDIR
    np.testing.assert_array_equal(read_volume(tmp_path / "s").array, hu)


def test_single_file_and_single_slice_folder(tmp_path, series_writer, hu_volume):
    hu = hu_volume((1, 6, 5))
    info = series_writer(tmp_path / "one", hu, spacing=(0.6, 0.6, 3.0))
    for path in (tmp_path / "one", info["files"][0]):
        vol = read_volume(path)
        assert vol.shape == (1, 6, 5)
        np.testing.assert_array_equal(vol.array, hu)
        np.testing.assert_allclose(vol.spacing, (0.6, 0.6, 3.0))  # z from SliceThickness

    def no_thickness(_k, ds):
        del ds.SliceThickness

    series_writer(tmp_path / "two", hu, per_slice=no_thickness)
    assert read_volume(tmp_path / "two").spacing[2] == 1.0


def test_oblique_orthogonal_orientation(tmp_path, series_writer, hu_volume):
    direction = Rotation.from_euler("xz", [20, 10], degrees=True).as_matrix()
    hu = hu_volume((4, 6, 5))
    series_writer(tmp_path / "s", hu, direction=direction, spacing=(0.7, 0.8, 2.0))
    vol = read_volume(tmp_path / "s")
    np.testing.assert_array_equal(vol.array, hu)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-5)
    np.testing.assert_allclose(vol.spacing, (0.7, 0.8, 2.0), atol=1e-5)


def test_gantry_tilt(tmp_path, series_writer, hu_volume):
    hu = hu_volume((4, 6, 5))
    shift = np.tan(np.radians(15.0)) * 2.5  # mm per slice along +y (column direction)
    positions = [(-100.0, -120.0 + k * shift, 50.0 + 2.5 * k) for k in range(4)]
    series_writer(tmp_path / "tilt", hu, positions=positions)
    with pytest.raises(GantryTiltError) as exc:
        read_volume(tmp_path / "tilt")
    assert str(tmp_path / "tilt") in str(exc.value) and "\n" not in str(exc.value)
    vol = read_volume(tmp_path / "tilt", allow_tilt=True)
    np.testing.assert_array_equal(vol.array, hu)
    stack = np.array([0.0, shift, 2.5]) / np.hypot(shift, 2.5)
    np.testing.assert_allclose(vol.direction[:, 2], stack, atol=1e-6)
    np.testing.assert_allclose(vol.spacing[2], np.hypot(shift, 2.5), rtol=1e-6)
    # voxel (0, 0, k) maps onto each slice's ImagePositionPatient
    np.testing.assert_allclose(vol.index_to_lps() @ [0, 0, 3, 1], [*positions[3], 1.0], atol=1e-4)

    series_writer(tmp_path / "tag", hu, extra={"GantryDetectorTilt": "12"})
    with pytest.raises(GantryTiltError, match="GantryDetectorTilt"):
        read_volume(tmp_path / "tag")


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_with_pydicom_encoders(tmp_path, series_writer, hu_volume, syntax):
    hu = hu_volume((2, 32, 33), seed=5)  # OpenJPEG needs >= 32 x 32
    series_writer(tmp_path / "s", hu, transfer_syntax=syntax)
    assert pydicom.dcmread(next((tmp_path / "s").iterdir())).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(read_volume(tmp_path / "s").array, hu)


# JPEG-LS lossless codestream (CharLS) of the 16 x 16 signed image built in _jls_stored().
_JLS_FRAME = (
    "/9j/9wALEAAQABABAREA//gADQH//wASAEMBFABA/9oACAEBAAAAAA/9EmI8iyHQZ/PZ3OZva2djX1qUESokSNIlCoE+nk6nFtaW"
    "VhEpJ6urKqopqSioJ6enLVqxEhJyxYrVqlSpygBAEAQCAQCACTUAgICAgICACUFKlQoUKEjJPUJ06dOnTpkyZMmTJkiJMTJUqVKq"
    "qqqqqoooAAAAAb0DtNFFFFFE0000000SolZMTTTTTTTSSSSSSSRESWkpSlKUpSlJSlEJJSUpSlIMQEBAQIECBACSUCBAgQIASchC"
    "EIQhEBJqEIQhCEIREREPkkIiIiIiIiIAAAAAAABH/1DwDuMFBQUFBQUFBQUKFCiRB1HSR0KFChQoUKFChQoUKFHA/9kA"
)


def _jls_stored() -> np.ndarray:
    yy, xx = np.mgrid[0:16, 0:16]
    return ((yy * 16 + xx) * 37 % 4096 - 2048).astype(np.int16)


def test_jpeg_ls_and_jpeg_lossless(tmp_path, series_writer):
    stored = _jls_stored().astype(np.float64)
    hu = (stored * 0.5 - 500.0)[None].astype(np.float32)  # -1524 .. 523.5 HU: no padding values
    frame = base64.b64decode(_JLS_FRAME)

    def to_jpeg_ls(_k, ds):
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLSLossless

    series_writer(tmp_path / "jls", hu, intercept=-500.0, per_slice=to_jpeg_ls)
    np.testing.assert_array_equal(read_volume(tmp_path / "jls").array, hu)

    # JPEG lossless process 14 SV1, encoded by GDCM through SimpleITK
    sitk_file = tmp_path / "sitk.dcm"
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(sitk_file))
    writer.SetUseCompression(True)
    writer.SetCompressor("JPEG")
    writer.Execute(sitk.GetImageFromArray(_jls_stored()))
    encoded = pydicom.dcmread(sitk_file)
    assert encoded.file_meta.TransferSyntaxUID == JPEGLosslessSV1

    def to_jpeg_lossless(_k, ds):
        ds.PixelData = encoded.PixelData
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1

    series_writer(tmp_path / "jpeg", hu, intercept=-500.0, per_slice=to_jpeg_lossless)
    np.testing.assert_array_equal(read_volume(tmp_path / "jpeg").array, hu)


@pytest.mark.parametrize("pad", [-2048.0, -3024.0, -2000.0])
def test_padding_values_become_fov_mask(tmp_path, series_writer, hu_volume, pad):
    hu = hu_volume((3, 8, 8))
    outside = np.zeros(hu.shape, bool)
    outside[:, :2, :] = True
    outside[:, :, -1] = True
    padded = np.where(outside, pad, hu).astype(np.float32)
    series_writer(tmp_path / "s", padded)
    vol = read_volume(tmp_path / "s")
    np.testing.assert_array_equal(vol.fov_mask, ~outside)
    np.testing.assert_array_equal(vol.array, np.where(outside, -1024.0, hu))
    assert vol.header.padding_value == pad


def test_pixel_padding_value_tag(tmp_path, series_writer, hu_volume):
    """A raw PixelPaddingValue (here -1500 HU, not one of the default values) marks padding."""
    hu = hu_volume((2, 6, 6))
    outside = np.zeros(hu.shape, bool)
    outside[:, 0, :] = True
    padded = np.where(outside, -1500.0, hu).astype(np.float32)
    raw_pad = int((-1500.0 - (-1000.0)) / 0.5)  # stored value with slope 0.5, intercept -1000

    def add_tag(_k, ds):
        ds.add_new("PixelPaddingValue", "SS", raw_pad)

    series_writer(tmp_path / "s", padded, per_slice=add_tag)
    vol = read_volume(tmp_path / "s")
    np.testing.assert_array_equal(vol.fov_mask, ~outside)
    np.testing.assert_array_equal(vol.array[outside], -1024.0)
    assert vol.header.padding_value == -1500.0


def test_pixel_padding_range(tmp_path, series_writer, hu_volume):
    hu = hu_volume((1, 6, 6))
    padded = hu.copy()
    padded[0, 0, :3] = [-1500.0, -1450.0, -1400.0]  # within the range; -1400 is the limit

    def add_tags(_k, ds):
        ds.add_new("PixelPaddingValue", "SS", int((-1500.0 + 1000.0) / 0.5))
        ds.add_new("PixelPaddingRangeLimit", "SS", int((-1400.0 + 1000.0) / 0.5))

    series_writer(tmp_path / "s", padded, per_slice=add_tags)
    expected = (padded >= -1500.0) & (padded <= -1400.0)
    np.testing.assert_array_equal(read_volume(tmp_path / "s").fov_mask, ~expected)


def test_input_not_modified(ct_series, digest):
    before = digest(ct_series["path"])
    stat_before = {p: os.stat(p).st_mtime_ns for p in ct_series["files"]}
    read_volume(ct_series["path"])
    assert digest(ct_series["path"]) == before
    assert {p: os.stat(p).st_mtime_ns for p in ct_series["files"]} == stat_before


def test_rescale_applied_per_slice_and_12_bit_unsigned(tmp_path, series_writer, hu_volume):
    hu = np.rint(hu_volume((3, 5, 6), seed=8))
    hu = np.clip(hu, -1024, 3071)

    def per_slice(k, ds):
        if k == 1:  # this slice: unsigned 12-bit, slope 1, intercept -1024 (typical Siemens)
            ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
            ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
            ds.PixelData = (hu[1] + 1024).astype("<u2").tobytes()

    series_writer(tmp_path / "s", hu, per_slice=per_slice)
    np.testing.assert_array_equal(read_volume(tmp_path / "s").array, hu)
