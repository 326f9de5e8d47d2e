"""Irregular series geometry: slice-wise reading (gantry tilt, missing slices), slice-wise derived DICOM,
NIfTI refusal, explicit resampling checked against an analytic phantom, and the axial-only guard."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from corpus_harness import dciodvfy_errors, expect_refusal
from scipy.spatial.transform import Rotation

from ctharmonize.errors import (
    GantryTiltError,
    GeometryError,
    IrregularGeometryError,
    NonAxialError,
    SliceSpacingError,
)
from ctharmonize.inference.harmonize import harmonize_volume, harmonized_volume
from ctharmonize.io import Volume, read_nifti, read_volume, write_nifti, write_volume
from ctharmonize.io.resample import require_regular, resample_to_regular
from ctharmonize.io.slice_orientation import check_axial, slice_orientation

DCIODVFY = shutil.which("dciodvfy")
TILT_DEG = 15.0
GAP = 2.5


def _tilted_positions(nz: int) -> list[tuple[float, float, float]]:
    """IPPs of a stack tilted TILT_DEG about the x axis: each slice GAP mm up and shifted along +y."""
    shift = np.tan(np.radians(TILT_DEG)) * GAP
    return [(-100.0, -120.0 + k * shift, 50.0 + GAP * k) for k in range(nz)]


@pytest.fixture
def tilted(tmp_path, series_writer, hu_volume):
    """6 slices of 32x32, gantry tilt 15 deg (tag and sheared IPPs), per-slice tube current."""
    hu = hu_volume((6, 32, 32), seed=11)
    positions = _tilted_positions(6)

    def per_slice(k, ds):
        ds.XRayTubeCurrent = 100 + 10 * k

    info = series_writer(tmp_path / "tilt", hu, positions=positions, spacing=(0.7, 0.8, GAP),
                         extra={"GantryDetectorTilt": f"{TILT_DEG:g}"}, per_slice=per_slice)
    return {"path": tmp_path / "tilt", "hu": hu, "positions": np.array(positions), **info}


@pytest.fixture
def missing(tmp_path, series_writer, hu_volume):
    """6 slices at z = 0, 2.5, 5, 10, 12.5, 15 mm (7.5 missing), written in reversed file order."""
    hu = hu_volume((6, 32, 32), seed=12)
    z = [0.0, 2.5, 5.0, 10.0, 12.5, 15.0]
    positions = [(-50.0, -60.0, v) for v in z]
    info = series_writer(tmp_path / "gap", hu, positions=positions, spacing=(0.7, 0.8, GAP),
                         names=[f"IM{6 - k:04d}.dcm" for k in range(6)])
    return {"path": tmp_path / "gap", "hu": hu, "positions": np.array(positions), **info}


def test_default_read_refuses_and_names_slicewise(tilted, missing):
    with pytest.raises(GantryTiltError) as exc:
        read_volume(tilted["path"])
    assert "GantryDetectorTilt 15 deg" in str(exc.value) and "slicewise=True" in str(exc.value)
    assert "\n" not in str(exc.value)
    with pytest.raises(SliceSpacingError) as exc:
        read_volume(missing["path"])
    assert "gap of 5 mm" in str(exc.value) and "slicewise=True" in str(exc.value)


def test_slicewise_read_of_tilted_series_keeps_each_slice_position(tilted):
    vol = read_volume(tilted["path"], slicewise=True)
    np.testing.assert_array_equal(vol.array, tilted["hu"])
    np.testing.assert_allclose(vol.slice_positions, tilted["positions"], atol=1e-5)
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-6)  # orthonormal: rows, columns, normal
    np.testing.assert_allclose(vol.spacing, (0.7, 0.8, GAP), atol=1e-6)  # gap along the normal
    assert not vol.is_regular
    assert "tilted 15 deg" in vol.irregularity()
    assert [float(ds.XRayTubeCurrent) for ds in vol.slice_datasets] == [100 + 10 * k for k in range(6)]
    assert vol.header.extra["orientation"] == "axial"


def test_slicewise_read_of_missing_slice(missing):
    vol = read_volume(missing["path"], slicewise=True)
    order = np.argsort(missing["positions"][:, 2])  # files were written in reversed name order
    np.testing.assert_array_equal(vol.array, missing["hu"][order])
    np.testing.assert_allclose(vol.slice_positions, missing["positions"][order], atol=1e-6)
    assert vol.spacing[2] == pytest.approx(GAP)
    problem = vol.irregularity()
    assert "missing slice" in problem and "gap of 5 mm after slice 2" in problem and "2.5 mm expected" in problem


def test_slicewise_still_refuses_duplicates_and_reads_regular_series_unchanged(tmp_path, series_writer, hu_volume,
                                                                                ct_series):
    z = [0.0, 2.5, 2.5, 5.0]
    series_writer(tmp_path / "dup", hu_volume((4, 8, 8)), positions=[(0.0, 0.0, v) for v in z])
    with pytest.raises(SliceSpacingError, match="duplicate"):
        read_volume(tmp_path / "dup", slicewise=True)
    plain, slicewise = read_volume(ct_series["path"]), read_volume(ct_series["path"], slicewise=True)
    assert slicewise.slice_positions is None and slicewise.is_regular
    np.testing.assert_array_equal(slicewise.array, plain.array)
    assert (slicewise.spacing, slicewise.origin) == (plain.spacing, plain.origin)


def test_tilted_series_dicom_to_derived_dicom_slice_by_slice(tmp_path, tilted):
    vol = read_volume(tilted["path"], slicewise=True)
    harmonized = harmonized_volume(vol, vol.array + 10.0, "siemens_b70f", "siemens_b30f")
    out = write_volume(harmonized, tmp_path / "derived", model_name="m", target_kernel="siemens_b30f")
    derived = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
    sources = sorted((pydicom.dcmread(f) for f in tilted["files"]), key=lambda d: float(d.ImagePositionPatient[2]))
    assert len(derived) == len(sources) == 6
    for k, (new, old) in enumerate(zip(derived, sources, strict=True)):
        np.testing.assert_allclose([float(v) for v in new.ImagePositionPatient],
                                   [float(v) for v in old.ImagePositionPatient], atol=1e-5)
        np.testing.assert_allclose([float(v) for v in new.ImageOrientationPatient],
                                   [float(v) for v in old.ImageOrientationPatient], atol=1e-6)
        assert float(new.GantryDetectorTilt) == float(old.GantryDetectorTilt) == TILT_DEG
        assert int(new.XRayTubeCurrent) == int(old.XRayTubeCurrent)  # per-slice attribute kept
        # SliceLocation = IPP . normal (normal = row x column = +z here)
        assert float(new.SliceLocation) == pytest.approx(float(old.ImagePositionPatient[2]), abs=1e-5)
        assert new.SourceImageSequence[0].ReferencedSOPInstanceUID == old.SOPInstanceUID
        stored = new.pixel_array * float(new.RescaleSlope) + float(new.RescaleIntercept)
        old_hu = old.pixel_array * float(old.RescaleSlope) + float(old.RescaleIntercept)
        np.testing.assert_array_equal(stored, np.rint(old_hu + 10.0), err_msg=f"slice {k}")
    assert dciodvfy_errors(out) == []
    back = read_volume(out, slicewise=True)
    np.testing.assert_allclose(back.slice_positions, tilted["positions"], atol=1e-5)


def test_missing_slice_dicom_to_derived_dicom_slice_by_slice(tmp_path, missing):
    vol = read_volume(missing["path"], slicewise=True)
    out = write_volume(vol.with_array(vol.array - 5.0), tmp_path / "derived")
    derived = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
    by_z = {round(float(pydicom.dcmread(f).ImagePositionPatient[2]), 3): pydicom.dcmread(f) for f in missing["files"]}
    assert sorted(by_z) == [round(float(d.ImagePositionPatient[2]), 3) for d in derived]
    for new in derived:
        old = by_z[round(float(new.ImagePositionPatient[2]), 3)]
        np.testing.assert_allclose([float(v) for v in new.ImagePositionPatient],
                                   [float(v) for v in old.ImagePositionPatient], atol=1e-6)
        assert list(map(float, new.ImageOrientationPatient)) == list(map(float, old.ImageOrientationPatient))
        old_hu = old.pixel_array * float(old.RescaleSlope) + float(old.RescaleIntercept)
        np.testing.assert_array_equal(new.pixel_array.astype(float), np.rint(old_hu - 5.0))
    assert dciodvfy_errors(out) == []
    with pytest.raises(SliceSpacingError):
        read_volume(out)  # the derived series keeps the gap, so a 3-D read still refuses it


def test_harmonize_volume_runs_slice_by_slice_on_irregular_geometry(tmp_path, missing):
    """The network sees the same slices whatever their spacing: a slice-wise volume harmonizes slice by slice."""
    import torch

    from ctharmonize.networks import MultipathGenerator

    torch.manual_seed(0)
    gen = MultipathGenerator(ngf=4, n_blocks=1, residual=False, n_downsampling=2).eval()
    vol = read_volume(missing["path"], slicewise=True)
    from ctharmonize.inference import SliceHarmonizer

    out = harmonize_volume(vol, SliceHarmonizer(gen, batch_size=2, device="cpu"), "ge_bone", "siemens_b30f")
    np.testing.assert_array_equal(out.slice_positions, vol.slice_positions)
    assert out.slice_datasets == vol.slice_datasets
    for k in (0, 3):  # each slice alone gives the same result: no 3-D context, no resampling
        alone = Volume(vol.array[k:k + 1], vol.spacing, tuple(vol.slice_positions[k]), vol.direction)
        one = harmonize_volume(alone, SliceHarmonizer(gen, batch_size=1, device="cpu"), "ge_bone", "siemens_b30f")
        np.testing.assert_allclose(out.array[k], one.array[0], atol=1e-3)
    written = write_volume(out, tmp_path / "harmonized")
    zs = [float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in sorted(written.iterdir())]
    np.testing.assert_allclose(zs, np.sort(missing["positions"][:, 2]), atol=1e-6)


def test_nifti_output_of_irregular_volume_is_refused(tmp_path, tilted, missing):
    for case, problem in ((tilted, "tilted 15 deg"), (missing, "missing slice")):
        vol = read_volume(case["path"], slicewise=True)
        target = tmp_path / "out.nii.gz"
        with pytest.raises(IrregularGeometryError) as exc:
            write_volume(vol, target)
        text = str(exc.value)
        assert text.startswith(str(target)) and problem in text and "--resample" in text and "\n" not in text
        assert not target.exists() and list(tmp_path.glob(".*")) == []
        with pytest.raises(IrregularGeometryError):
            require_regular(vol, target)


def test_allow_tilt_sheared_volume_is_not_regular_and_needs_resampling(tilted):
    vol = read_volume(tilted["path"], allow_tilt=True)  # the older explicit mode still works
    assert vol.slice_positions is None and not vol.is_regular and "tilted 15 deg" in vol.irregularity()
    np.testing.assert_allclose(vol.positions_lps(), tilted["positions"], atol=1e-4)
    fixed = resample_to_regular(vol)
    assert fixed.is_regular


def _linear(points: np.ndarray) -> np.ndarray:
    """Analytic phantom: HU = f(LPS) linear in x, y, z (so bilinear/linear interpolation is exact)."""
    return 20.0 + 1.5 * points[..., 0] - 2.0 * points[..., 1] + 3.0 * points[..., 2]


def _sample(positions: np.ndarray, shape_yx: tuple[int, int], sx: float, sy: float,
            row=np.array([1.0, 0, 0]), col=np.array([0, 1.0, 0])) -> np.ndarray:
    """f at every pixel (j, i) of slices at ``positions``: p_k + i * sx * row + j * sy * col."""
    ny, nx = shape_yx
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    pts = positions[:, None, None, :] + ii[..., None] * sx * row + jj[..., None] * sy * col
    return _linear(pts).astype(np.float32)


def test_resample_tilt_correction_matches_analytic_phantom(tmp_path):
    rot = Rotation.from_euler("z", 20, degrees=True).as_matrix()  # oblique in-plane axes, normal = +z
    row, col = rot[:, 0], rot[:, 1]
    sx, sy, nz, ny, nx = 0.8, 0.7, 7, 24, 20
    shift = np.tan(np.radians(TILT_DEG)) * GAP  # each slice shifted along the column direction
    p0 = np.array([-30.0, 10.0, 40.0])
    positions = np.array([p0 + k * GAP * np.array([0, 0, 1.0]) + k * shift * col for k in range(nz)])
    vol = Volume(_sample(positions, (ny, nx), sx, sy, row, col), (sx, sy, GAP), tuple(p0),
                 np.column_stack([row, col, [0, 0, 1.0]]), slice_positions=positions)
    out = resample_to_regular(vol)

    # target grid by hand: in-plane axes kept, slices along the normal every GAP mm from slice 0
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([row * sx, col * sy, np.array([0, 0, 1.0]) * GAP])
    affine[:3, 3] = p0
    np.testing.assert_allclose(out.index_to_lps(), affine, atol=1e-9)
    assert out.shape == (nz, ny, nx) and out.is_regular and out.slice_positions is None
    kk, jj, ii = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    points = (affine @ np.stack([ii, jj, kk, np.ones_like(ii)]).reshape(4, -1))[:3].T.reshape(nz, ny, nx, 3)
    expected = _linear(points)
    # uncovered by the tilted stack: target row j needs source row j - b_k, b_k = k * shift / sy
    covered = (jj - kk * shift / sy >= -1e-6)
    np.testing.assert_array_equal(out.fov_mask, covered)
    np.testing.assert_allclose(out.array[covered], expected[covered], atol=2e-3)
    assert np.all(out.array[~covered] == -1024.0)
    assert "resampled" in out.header.extra

    path = write_nifti(out, tmp_path / "fixed.nii.gz")  # regular now: NIfTI accepts it
    img = nib.load(path)
    np.testing.assert_allclose(img.affine, np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine, atol=1e-5)


def test_resample_integer_pixel_tilt_on_random_data():
    """Tilt of exactly one row per slice: every resampled slice is its source slice moved by k rows."""
    rng = np.random.default_rng(3)
    nz, ny, nx, sy = 5, 16, 12, 0.5
    hu = rng.normal(0.0, 300.0, (nz, ny, nx)).astype(np.float32)
    positions = np.array([[0.0, k * sy, k * 2.0] for k in range(nz)])
    out = resample_to_regular(Volume(hu, (0.6, sy, 2.0), tuple(positions[0]), np.eye(3), slice_positions=positions))
    assert out.shape == hu.shape
    for k in range(nz):
        np.testing.assert_allclose(out.array[k, k:], hu[k, : ny - k], atol=1e-4)
        assert np.all(out.array[k, :k] == -1024.0) and not out.fov_mask[k, :k].any() and out.fov_mask[k, k:].all()


def test_resample_missing_slice_to_equidistant_slices():
    rng = np.random.default_rng(4)
    z = np.array([0.0, 2.0, 4.0, 8.0, 10.0])  # 6 mm missing
    hu = rng.normal(0.0, 300.0, (5, 6, 7)).astype(np.float32)
    positions = np.stack([np.zeros(5), np.zeros(5), z], axis=1)
    vol = Volume(hu, (0.5, 0.5, 2.0), (0.0, 0.0, 0.0), np.eye(3), slice_positions=positions)
    assert "missing slice" in vol.irregularity()
    out = resample_to_regular(vol)
    assert out.shape == (6, 6, 7) and out.spacing[2] == pytest.approx(2.0) and out.fov_mask is None
    np.testing.assert_allclose(out.array[[0, 1, 2, 4, 5]], hu, atol=1e-4)
    np.testing.assert_allclose(out.array[3], 0.5 * (hu[2] + hu[3]), atol=1e-4)  # z = 6 between 4 and 8
    # explicit 1.25 mm on the linear phantom: exact at every target height
    lin = Volume(_sample(positions, (6, 7), 0.5, 0.5), (0.5, 0.5, 2.0), (0.0, 0.0, 0.0), np.eye(3),
                 slice_positions=positions)
    fine = resample_to_regular(lin, spacing_z=1.25)
    assert fine.shape[0] == 9  # 0, 1.25, ..., 10
    heights = np.arange(9) * 1.25
    expected = _sample(np.stack([np.zeros(9), np.zeros(9), heights], axis=1), (6, 7), 0.5, 0.5)
    np.testing.assert_allclose(fine.array, expected, atol=1e-3)


def test_resample_slicewise_dicom_read_then_nifti(tmp_path, series_writer):
    """End to end: a tilted DICOM series of the linear phantom, read slice-wise, resampled, written as NIfTI."""
    sx = sy = 1.0
    positions = np.array(_tilted_positions(5))
    hu = np.rint(_sample(positions, (32, 32), sx, sy) * 2) / 2  # multiples of 0.5 HU (the fixture's slope)
    series_writer(tmp_path / "tilt", hu, positions=positions, spacing=(sx, sy, GAP),
                  extra={"GantryDetectorTilt": "15"})
    vol = read_volume(tmp_path / "tilt", slicewise=True)
    fixed = resample_to_regular(vol)
    assert "GantryDetectorTilt" not in fixed.source_dataset  # the tilt is corrected
    path = write_nifti(fixed, tmp_path / "fixed.nii")
    back = read_nifti(path)
    kk, jj, ii = np.nonzero(fixed.fov_mask)
    points = (fixed.index_to_lps() @ np.stack([ii, jj, kk, np.ones_like(ii)]))[:3].T
    np.testing.assert_allclose(back.array[kk, jj, ii], _linear(points), atol=0.5)  # rounding of the source
    assert fixed.fov_mask.mean() > 0.8


@pytest.mark.parametrize(("rotation", "plane"), [
    (("x", 0), "axial"), (("x", 40), "axial"), (("xz", (30, 20)), "axial"),
    (("y", 90), "sagittal"), (("x", 90), "coronal"), (("x", 50), "coronal"), (("y", 60), "sagittal"),
])
def test_orientation_classification(tmp_path, series_writer, hu_volume, rotation, plane):
    direction = Rotation.from_euler(rotation[0], rotation[1], degrees=True).as_matrix()
    normal = np.cross(direction[:, 0], direction[:, 1])
    angles = np.degrees(np.arccos(np.abs(normal)))  # to LPS x, y, z, by hand
    expected = "axial" if angles[2] <= 45 else ("sagittal", "coronal")[int(np.argmin(angles[:2]))]
    assert expected == plane
    series_writer(tmp_path / "s", hu_volume((3, 8, 8)), direction=direction)
    vol = read_volume(tmp_path / "s")
    assert vol.header.extra["orientation"] == plane == slice_orientation(vol.direction)
    if plane == "axial":
        assert check_axial(vol, tmp_path / "s") == "axial"
    else:
        with pytest.raises(NonAxialError) as exc:
            check_axial(vol, tmp_path / "s")
        text = str(exc.value)
        assert text.startswith(f"{tmp_path / 's'}: {plane} reformat") and "--allow_non_axial" in text
        assert "trained on axial slices" in text and "\n" not in text


def test_orientation_of_nifti_from_affine(tmp_path):
    affine = np.array([[0, 0, -2.0, 10], [-0.8, 0, 0, 5], [0, 0.9, 0, -3], [0, 0, 0, 1]])  # sagittal RAS
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4), np.float32), affine), tmp_path / "sag.nii.gz")
    vol = read_nifti(tmp_path / "sag.nii.gz")
    assert slice_orientation(vol.direction) == "sagittal"
    with pytest.raises(NonAxialError, match="sagittal reformat"):
        check_axial(vol, tmp_path / "sag.nii.gz")


def test_writer_refuses_skewed_in_plane_direction(tmp_path):
    skew = np.column_stack([[1.0, 0, 0], [0.3192, 0.9477, 0], [0, 0, 1.0]])
    vol = Volume(np.zeros((2, 8, 8), np.float32), (1.0, 1.0, 2.0), direction=skew)
    with pytest.raises(GeometryError) as exc:
        write_volume(vol, tmp_path / "out")
    assert str(exc.value).startswith(str(tmp_path / "out")) and "not orthonormal" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_3d_step_refuses_tilted_series(capsys, tilted, tmp_path):
    out = tmp_path / "lungs.nii.gz"
    expect_refusal(capsys, ["segment-lungs", "--input", tilted["path"], "--out", out], "GantryDetectorTilt",
                   "slicewise", watch=tmp_path, absent=[out])
