"""read_label_map: a label map is read as written (uint8 (Z, Y, X)); a CT image, a probability map or a
map on another grid is refused with one line naming the file and what was found."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from corpus_harness import expect_refusal, run_cli

from ctharmonize.errors import LabelMapError
from ctharmonize.io import Volume, read_volume, write_nifti
from ctharmonize.io.label_map import MAX_LABELS, read_label_map

LUNG = {0, 1, 2}
SPACING = (0.7, 0.8, 2.5)
ORIGIN = (-100.0, -120.0, 50.0)


def _ct(seed: int = 0, shape=(6, 16, 20)) -> Volume:
    """A CT-like HU volume (air, tissue, bone values)."""
    hu = np.random.default_rng(seed).integers(-1024, 1712, size=shape).astype(np.float32)
    hu[0, 0, 0], hu[-1, -1, -1] = -1024.0, 1712.0
    return Volume(hu, SPACING, ORIGIN, np.eye(3))


def _lungs(shape=(6, 16, 20)) -> np.ndarray:
    """(Z, Y, X) lung labels: 1 = right lung (patient's right = low x in LPS), 2 = left lung."""
    labels = np.zeros(shape, np.uint8)
    labels[1:-1, 3:-3, 2:9] = 1
    labels[1:-1, 3:-3, 11:18] = 2
    return labels


def _nifti_xyz(path: Path, zyx: np.ndarray, volume: Volume, dtype=None) -> Path:
    """Write (Z, Y, X) data with ``volume``'s affine directly with nibabel (not the project's writer)."""
    data = zyx.transpose(2, 1, 0)
    img = nib.Nifti1Image(data.astype(dtype) if dtype is not None else data, volume.affine_ras())
    nib.save(img, str(path))
    return path


def _refused(path: Path, *must_contain: str, **kwargs) -> str:
    with pytest.raises(LabelMapError) as info:
        read_label_map(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for text in must_contain:
        assert text in message, (text, message)
    return message


def test_label_map_is_read_as_written(tmp_path):
    image = _ct()
    labels = _lungs()
    path = _nifti_xyz(tmp_path / "lung.nii.gz", labels, image, np.uint8)
    out = read_label_map(path, like=image, allowed=LUNG)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out, labels)
    # int16 storage with scl_slope 1 and float32 storage read the same
    np.testing.assert_array_equal(read_label_map(_nifti_xyz(tmp_path / "l16.nii", labels, image, np.int16)), labels)
    np.testing.assert_array_equal(read_label_map(_nifti_xyz(tmp_path / "lf.nii", labels, image, np.float32)), labels)


def test_label_map_written_by_the_project_matches_a_dicom_image(tmp_path, series_writer):
    """segment-lungs' output path: the DICOM series' geometry stored as float32 in the NIfTI still matches."""
    hu = np.rint(_ct().array / 2) * 2  # representable with the fixture's slope 0.5
    direction = np.array([[0.8660254, -0.5, 0.0], [0.5, 0.8660254, 0.0], [0.0, 0.0, 1.0]])  # 30 deg oblique
    series_writer(tmp_path / "series", hu, spacing=SPACING, origin=(-187.3, -211.1, 1234.567), direction=direction)
    image = read_volume(tmp_path / "series")
    path = write_nifti(image.with_array(_lungs().astype(np.float32), fov_mask=None), tmp_path / "lung.nii.gz")
    np.testing.assert_array_equal(read_label_map(path, like=image, allowed=LUNG), _lungs())


def test_ct_image_as_lung_map_is_refused(tmp_path):
    """emphysema_mask_shape: a CT volume on the same grid given as --lung."""
    image = _ct()
    path = _nifti_xyz(tmp_path / "ct.nii.gz", image.array, image)
    values = np.unique(image.array)
    _refused(path, f"not a label map: {values.size} distinct values from -1024 to 1712", "(a CT image in HU?)",
             "expected integer labels in {0, 1, 2}", like=image, allowed=LUNG)
    _refused(path, "not a label map", f"at most {MAX_LABELS} distinct integer labels in 0..255")  # no `allowed`


def test_other_subjects_ct_as_lung_map_is_refused(tmp_path):
    """emphysema_mask_mismatch: another subject's CT, same shape."""
    image, other = _ct(0), _ct(7)
    path = _nifti_xyz(tmp_path / "other.nii.gz", other.array, other)
    _refused(path, f"{np.unique(other.array).size} distinct values", "(a CT image in HU?)", like=image, allowed=LUNG)


def test_probability_map_negative_and_unexpected_labels(tmp_path):
    image = _ct()
    prob = _lungs().astype(np.float32) * 0.5  # 0, 0.5, 1.0: not integer labels
    _refused(_nifti_xyz(tmp_path / "p.nii", prob, image), "3 distinct values from 0 to 1", "1 of them not integers",
             "e.g. 0.5", allowed=LUNG)
    neg = _lungs().astype(np.int16)
    neg[0, 0, 0] = -1
    message = _refused(_nifti_xyz(tmp_path / "n.nii", neg, image, np.int16), "4 distinct values from -1 to 2",
                       allowed=LUNG)
    assert "CT image" not in message
    five = _lungs()
    five[2, 5, 5], five[3, 5, 5] = 5, 7
    _refused(_nifti_xyz(tmp_path / "five.nii", five, image, np.uint8), "including 5, 7", "{0, 1, 2}", allowed=LUNG)
    # the same map is fine where those labels are allowed, and without a restriction
    np.testing.assert_array_equal(read_label_map(tmp_path / "five.nii", allowed={0, 1, 2, 5, 7}), five)
    np.testing.assert_array_equal(read_label_map(tmp_path / "five.nii"), five)
    many = np.arange(np.prod(image.shape), dtype=np.int64).reshape(image.shape) % (MAX_LABELS + 1)
    _refused(_nifti_xyz(tmp_path / "many.nii", many, image, np.int16), f"{MAX_LABELS + 1} distinct values")
    big = _lungs().astype(np.int16)
    big[0, 0, 0] = 300  # does not fit uint8 (would wrap to 44)
    _refused(_nifti_xyz(tmp_path / "big.nii", big, image, np.int16), "from 0 to 300")


@pytest.mark.parametrize("change, text", [
    ({"array": np.zeros((5, 16, 20), np.float32)}, "shape (Z, Y, X) (5, 16, 20) vs (6, 16, 20)"),
    ({"spacing": (0.7, 0.8, 2.0)}, "spacing (x, y, z) (0.7, 0.8, 2) mm vs (0.7, 0.8, 2.5) mm"),
    ({"origin": (-100.0, -119.2, 50.0)}, "origin (LPS) (-100, -119.2, 50) mm vs (-100, -120, 50) mm"),
    ({"direction": np.diag([1.0, 1.0, -1.0])}, "direction (columns)"),
])
def test_label_map_on_another_grid_is_refused(tmp_path, change, text):
    image = _ct()
    other = Volume(_lungs().astype(np.float32), SPACING, ORIGIN, np.eye(3)).with_array(
        change.get("array", _lungs().astype(np.float32)), **{k: v for k, v in change.items() if k != "array"})
    path = _nifti_xyz(tmp_path / "lung.nii.gz", other.array, other, np.uint8)
    _refused(path, "label map is on another grid than the image", text, like=image, allowed=LUNG)


def test_grid_tolerance_accepts_float32_rounding_only(tmp_path):
    """An origin 0.001 mm off (float32 storage of a DICOM origin) is the same grid; 0.05 mm (7% of a voxel) is not."""
    image = _ct()
    for shift, ok in ((0.001, True), (0.05, False)):
        moved = Volume(_lungs().astype(np.float32), SPACING, (ORIGIN[0] + shift, *ORIGIN[1:]), np.eye(3))
        path = _nifti_xyz(tmp_path / f"l{shift}.nii", moved.array, moved, np.uint8)
        if ok:
            np.testing.assert_array_equal(read_label_map(path, like=image, allowed=LUNG), _lungs())
        else:
            _refused(path, "origin (LPS)", like=image)


@pytest.mark.parametrize("command", ["emphysema", "body-composition"])
def test_cli_lung_option_refuses_a_ct_image(capsys, tmp_path, command):
    """``emphysema --lung`` / ``body-composition --lung`` given a CT image: one line, exit 2, nothing written."""
    image = _ct()
    ct = _nifti_xyz(tmp_path / "ct.nii.gz", image.array, image)
    out = tmp_path / ("e.json" if command == "emphysema" else "bc.nii.gz")
    expect_refusal(capsys, [command, "--input", ct, "--lung", ct, "--out", out], str(ct), "not a label map",
                   watch=tmp_path, absent=[out])
    lungs = _nifti_xyz(tmp_path / "lungs.nii.gz", _lungs(), image, np.uint8)
    shifted = Volume(image.array, image.spacing, (image.origin[0] + 5.0, *image.origin[1:]), image.direction)
    elsewhere = _nifti_xyz(tmp_path / "lungs_elsewhere.nii.gz", _lungs(), shifted, np.uint8)
    expect_refusal(capsys, [command, "--input", ct, "--lung", elsewhere, "--out", out], "another grid",
                   watch=tmp_path, absent=[out])
    rc, _, err = run_cli(capsys, command, "--input", ct, "--lung", lungs, "--out", out)
    assert rc == 0, err
