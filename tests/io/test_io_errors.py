"""Bad inputs raise the documented CTHarmonizeError subclass with a one-line message naming the path."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ctharmonize.errors import (
    CorruptFileError,
    CTHarmonizeError,
    DimensionError,
    EmptyInputError,
    InputError,
    MissingPixelDataError,
    ModalityError,
    MultipleSeriesError,
    NonFiniteError,
    NotDicomError,
    SliceSpacingError,
    UnsupportedFormatError,
)
from ctharmonize.io import read_volume


def _raises(exc_type, path, must_name=None, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        read_volume(path, **kwargs)
    message = str(info.value)
    assert isinstance(info.value, CTHarmonizeError)
    assert "\n" not in message
    assert str(must_name or path) in message
    return message


def test_nonexistent_and_unsupported(tmp_path):
    _raises(InputError, tmp_path / "missing")
    (tmp_path / "a.mha").write_bytes(b"ObjectType = Image\n")
    _raises(UnsupportedFormatError, tmp_path / "a.mha")


def test_empty_folder_and_empty_file(tmp_path):
    (tmp_path / "empty").mkdir()
    _raises(EmptyInputError, tmp_path / "empty")
    (tmp_path / "only_ignored").mkdir()
    (tmp_path / "only_ignored" / "notes.txt").write_text("x")
    _raises(EmptyInputError, tmp_path / "only_ignored")
    (tmp_path / "zero").write_bytes(b"")
    _raises(EmptyInputError, tmp_path / "zero")


def test_not_dicom(tmp_path):
    (tmp_path / "file.dcm").write_bytes(b"this is plain text, not DICOM at all\n" * 20)
    _raises(NotDicomError, tmp_path / "file.dcm")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "blob").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    msg = _raises(NotDicomError, tmp_path / "folder")
    assert "no DICOM image files" in msg


def test_non_ct_modality(tmp_path, series_writer, hu_volume):
    series_writer(tmp_path / "mr", hu_volume((2, 4, 4)), modality="MR")
    _raises(ModalityError, tmp_path / "mr", must_name=tmp_path / "mr" / "slice000.dcm")


def test_multiple_series_lists_uids(tmp_path, series_writer, hu_volume):
    a = series_writer(tmp_path / "mixed", hu_volume((2, 4, 4)), names=["a1", "a2"])
    b = series_writer(tmp_path / "mixed", hu_volume((2, 4, 4)), names=["b1", "b2"])
    msg = _raises(MultipleSeriesError, tmp_path / "mixed")
    assert a["series_uid"] in msg and b["series_uid"] in msg


def test_missing_slice_and_duplicate(tmp_path, series_writer, hu_volume):
    z = [0.0, 2.5, 5.0, 10.0, 12.5]  # 7.5 is missing
    series_writer(tmp_path / "gap", hu_volume((5, 4, 4)), positions=[(0.0, 0.0, v) for v in z])
    msg = _raises(SliceSpacingError, tmp_path / "gap")
    assert "5 mm" in msg and "slice 2" in msg and "expected 2.5 mm" in msg
    z = [0.0, 2.5, 2.5, 5.0]
    series_writer(tmp_path / "dup", hu_volume((4, 4, 4)), positions=[(0.0, 0.0, v) for v in z])
    assert "duplicate" in _raises(SliceSpacingError, tmp_path / "dup")
    # within tolerance: 2.5 +- 0.5 % is accepted by default, refused at 0.1 %
    z = [0.0, 2.5, 5.0125, 7.5, 10.0]
    series_writer(tmp_path / "jitter", hu_volume((5, 4, 4)), positions=[(0.0, 0.0, v) for v in z])
    assert read_volume(tmp_path / "jitter").shape == (5, 4, 4)
    _raises(SliceSpacingError, tmp_path / "jitter", spacing_tolerance=0.001)


def test_missing_pixel_data(tmp_path, series_writer, hu_volume):
    def drop_pixels(k, ds):
        if k == 1:
            del ds.PixelData

    info = series_writer(tmp_path / "s", hu_volume((3, 4, 4)), per_slice=drop_pixels)
    _raises(MissingPixelDataError, tmp_path / "s", must_name=info["files"][1])
    _raises(MissingPixelDataError, info["files"][1])


def test_truncated_file(tmp_path, series_writer, hu_volume):
    info = series_writer(tmp_path / "s", hu_volume((3, 16, 16)))
    victim = info["files"][2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 200])  # lose the end of the pixel data
    _raises(CorruptFileError, tmp_path / "s", must_name=victim)
    victim.write_bytes(data[:200])  # cut inside the header
    _raises(CorruptFileError, victim)


def _nifti(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def test_nifti_errors(tmp_path):
    data = np.zeros((4, 4, 3), np.float32)
    data[1, 2, 0] = np.nan
    _raises(NonFiniteError, _nifti(tmp_path / "nan.nii.gz", data))
    data[1, 2, 0] = np.inf
    _raises(NonFiniteError, _nifti(tmp_path / "inf.nii", data))
    _raises(DimensionError, _nifti(tmp_path / "flat.nii.gz", np.zeros((4, 4), np.float32)))
    _raises(DimensionError, _nifti(tmp_path / "4d.nii.gz", np.zeros((4, 4, 3, 2), np.float32)))
    ok = _nifti(tmp_path / "4d1.nii.gz", np.ones((4, 4, 3, 1), np.float32))
    assert read_volume(ok).shape == (3, 4, 4)
    good = _nifti(tmp_path / "good.nii.gz", np.ones((8, 8, 8), np.float32)).read_bytes()
    (tmp_path / "trunc.nii.gz").write_bytes(good[: len(good) // 2])
    _raises(CorruptFileError, tmp_path / "trunc.nii.gz")
    (tmp_path / "junk.nii").write_bytes(b"not a nifti" * 40)
    _raises(CorruptFileError, tmp_path / "junk.nii")
