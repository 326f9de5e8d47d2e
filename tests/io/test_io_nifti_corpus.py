"""Bad-input corpus, NIfTI part: files crafted with nibabel (and raw bytes), refused at read time with a
one-line error naming the file and the problem, or read correctly (checked against the affine by hand)."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from corpus_harness import expect_refusal

from ctharmonize.errors import (
    CorruptFileError,
    CTHarmonizeError,
    DimensionError,
    ImageTooLargeError,
    NiftiGeometryError,
    NonFiniteError,
)
from ctharmonize.io import read_volume
from ctharmonize.io.nifti import MAX_VOXELS, ORTHOGONALITY_TOLERANCE, read_nifti

LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS for the first two rows


def _data(shape=(12, 10, 6), seed=1) -> np.ndarray:
    """(X, Y, Z) float32 HU as NIfTI stores them."""
    return np.random.default_rng(seed).integers(-1000, 1500, size=shape).astype(np.float32)


def _affine(columns: np.ndarray, origin=(10.0, -20.0, 30.0)) -> np.ndarray:
    """4x4 RAS affine with the given 3x3 (scaled) columns."""
    affine = np.eye(4)
    affine[:3, :3] = columns
    affine[:3, 3] = origin
    return affine


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None, *, sform: int = 1, qform: int = 1,
          pixdim: tuple[float, float, float] | None = None) -> Path:
    img = nib.Nifti1Image(data, None)
    img.set_sform(affine if sform else None, code=sform)
    img.set_qform(affine if qform else None, code=qform)
    nib.save(img, str(path))
    if pixdim is not None:  # patched into the bytes: nibabel's writer fills pixdim from the affine
        assert path.suffix == ".nii"
        raw = bytearray(path.read_bytes())
        raw[80:92] = struct.pack("<3f", *pixdim)
        path.write_bytes(bytes(raw))
    return path


def _refused(exc_type: type[CTHarmonizeError], path: Path, *must_contain: str) -> str:
    with pytest.raises(exc_type) as info:
        read_volume(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for text in must_contain:
        assert text in message, (text, message)
    return message


def _stored_pixdim(path: Path) -> tuple[float, ...]:
    """pixdim[1..3] as stored in a .nii file (float32 at byte 80), read without nibabel."""
    return struct.unpack("<3f", path.read_bytes()[80:92])


def _rot(axis: str, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


# --- zero / negative / NaN pixdim --------------------------------------------------------------------


@pytest.mark.parametrize("pixdim", [(0.0, 0.0, 0.0), (0.7, 0.7, 0.0), (0.7, -0.7, 2.5), (0.7, 0.7, np.nan)])
def test_nifti_zero_pixdim_without_sform_or_qform_is_refused(tmp_path, pixdim):
    """nifti_zero_pixdim: nibabel would silently set 0 dims to 1 mm (and take abs of negative ones)."""
    path = _save(tmp_path / "zpix.nii", _data(), None, sform=0, qform=0, pixdim=pixdim)
    np.testing.assert_array_equal(_stored_pixdim(path), np.float32(pixdim))
    bad = [i for i, v in enumerate(pixdim, start=1) if not v > 0]
    message = _refused(NiftiGeometryError, path, "pixdim[1..3]", "no sform or qform", "no usable geometry",
                       *(f"pixdim[{i}] = " for i in bad))
    for good in {1, 2, 3} - set(bad):
        assert f"pixdim[{good}] = " not in message


def test_nifti_zero_pixdim_with_qform_is_refused(tmp_path):
    """The qform is the quaternion scaled by pixdim: zero pixdims give it no voxel size either."""
    path = _save(tmp_path / "q.nii", _data(), np.diag([0.7, 0.7, 2.5, 1.0]), sform=0, qform=1, pixdim=(0, 0, 0))
    _refused(NiftiGeometryError, path, "pixdim[1] = 0", "pixdim[3] = 0", "qform", "no usable geometry")


def test_nifti_zero_pixdim_with_sform_uses_the_sform(tmp_path):
    """pixdim does not enter the sform: the file is read with the sform's geometry."""
    columns = np.diag([0.7, 0.8, 2.5])
    data = _data()
    path = _save(tmp_path / "s.nii", data, _affine(columns), sform=2, qform=0, pixdim=(0.0, 0.0, 0.0))
    assert _stored_pixdim(path) == (0.0, 0.0, 0.0)
    vol = read_volume(path)
    np.testing.assert_allclose(vol.spacing, (0.7, 0.8, 2.5), rtol=1e-6)
    np.testing.assert_allclose(vol.origin, LPS @ [10.0, -20.0, 30.0], atol=1e-5)
    np.testing.assert_allclose(vol.direction, LPS, atol=1e-7)
    np.testing.assert_array_equal(vol.array, data.transpose(2, 1, 0))


def test_nifti_zero_scale_sform_is_refused(tmp_path):
    """nifti_zero_scale: an sform with a zero slice column."""
    path = _save(tmp_path / "zero.nii.gz", _data(), _affine(np.diag([0.7, 0.8, 0.0])), qform=0)
    _refused(NiftiGeometryError, path, "invalid NIfTI affine", "0.0]")


# --- sheared / skewed affines -------------------------------------------------------------------------


def test_nifti_sheared_slice_axis_is_refused_with_the_tilt_angle(tmp_path):
    """nifti_shear_slice: the slice axis leans 20 deg towards y (as a gantry-tilted stack would)."""
    tilt = 20.0
    stack = 2.5 * np.array([0.0, np.sin(np.radians(tilt)), np.cos(np.radians(tilt))])
    columns = np.column_stack([[0.7, 0, 0], [0, 0.7, 0], stack])
    path = _save(tmp_path / "shear.nii.gz", _data(), _affine(columns), qform=0)
    _refused(NiftiGeometryError, path, "sheared NIfTI affine", f"tilted {tilt:.2f} deg", "resample", "SimpleITK")
    # the same file is readable on request, with the sheared geometry as stored
    vol = read_nifti(path, allow_shear=True)
    np.testing.assert_allclose(vol.direction[:, 2], LPS @ stack / 2.5, atol=1e-6)
    assert vol.spacing[2] == pytest.approx(2.5, rel=1e-6)


def test_nifti_skewed_in_plane_axes_are_refused_with_the_angle(tmp_path):
    """nifti_nonorthogonal_inplane: the row axis is 71.39 deg from the column axis (sform only)."""
    angle = 71.39
    row = 0.7 * np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle)), 0.0])
    columns = np.column_stack([[0.7, 0, 0], row, [0, 0, 2.5]])
    path = _save(tmp_path / "skew.nii.gz", _data(), _affine(columns), qform=0)
    _refused(NiftiGeometryError, path, "skewed NIfTI affine", f"{angle:.2f} deg apart", "resample")


def test_orthogonality_tolerance_is_on_the_cosine(tmp_path):
    """|cos| between slice and row axes just below the tolerance is read; just above is refused."""
    for cos, ok in ((0.5 * ORTHOGONALITY_TOLERANCE, True), (2 * ORTHOGONALITY_TOLERANCE, False)):
        stack = 2.5 * np.array([0.0, cos, np.sqrt(1 - cos**2)])
        path = _save(tmp_path / f"c{cos:g}.nii", _data(), _affine(np.column_stack([[0.7, 0, 0], [0, 0.7, 0], stack])),
                     qform=0)
        if ok:
            np.testing.assert_allclose(read_volume(path).direction[:, 2], LPS @ stack / 2.5, atol=1e-6)
        else:
            _refused(NiftiGeometryError, path, "sheared NIfTI affine")


def test_orthogonal_oblique_and_left_handed_affines_are_read(tmp_path):
    """oblique: 30 deg about z then 20 deg about x, and a flipped (left-handed) axis: geometry as in the affine."""
    data = _data()
    rotation = _rot("x", 20.0) @ _rot("z", 30.0)
    for name, columns in (("oblique.nii.gz", rotation @ np.diag([0.7, 0.8, 2.5])),
                          ("flipped.nii.gz", np.diag([0.7, 0.8, -2.5])),
                          ("oblique_flipped.nii", rotation @ np.diag([-0.7, 0.8, 2.5]))):
        path = _save(tmp_path / name, data, _affine(columns))
        vol = read_volume(path)
        lps = LPS @ columns
        spacing = np.linalg.norm(lps, axis=0)
        np.testing.assert_allclose(vol.spacing, spacing, rtol=1e-6)
        np.testing.assert_allclose(vol.direction, lps / spacing, atol=1e-6)
        np.testing.assert_allclose(vol.origin, LPS @ [10.0, -20.0, 30.0], atol=1e-4)
        np.testing.assert_array_equal(vol.array, data.transpose(2, 1, 0))
        # voxel (x=3, y=2, z=1) lands where the file's own affine puts it (nibabel, RAS -> LPS)
        ras = nib.load(str(path)).affine @ [3, 2, 1, 1]
        np.testing.assert_allclose(vol.index_to_lps() @ [3, 2, 1, 1], [*(LPS @ ras[:3]), 1.0], atol=1e-4)


# --- absurd claimed sizes -----------------------------------------------------------------------------


def _huge_header(path: Path, shape: tuple[int, ...], payload: int, dtype=np.float32) -> Path:
    """A .nii header claiming ``shape`` followed by only ``payload`` bytes of data."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape(shape)
    hdr.set_sform(np.diag([0.7, 0.7, 2.5, 1.0]), code=1)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * payload
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_nii_huge_dims_refused_before_allocation(tmp_path):
    """nii_huge_dims: 20000^3 float32 claimed, 4 KiB present; today 'MemoryError: '."""
    path = _huge_header(tmp_path / "huge.nii", (20000, 20000, 20000), 4096)
    size = path.stat().st_size
    claimed = 20000**3 * 4

    def refuse() -> None:
        _refused(CorruptFileError, path, "(20000, 20000, 20000)", f"{claimed} bytes", f"only {size} bytes",
                 "truncated")

    assert _peak_mib(refuse) < 16


def test_nii_gz_claiming_more_than_it_inflates_to_is_refused_without_allocating_it(tmp_path):
    """A .nii.gz claiming 512^3 float32 (512 MiB) with 4 KiB of data: nibabel would allocate 512 MiB first."""
    path = _huge_header(tmp_path / "big.nii.gz", (512, 512, 512), 4096)
    inflated = len(gzip.decompress(path.read_bytes()))

    def refuse() -> None:
        _refused(CorruptFileError, path, "(512, 512, 512)", f"{512**3 * 4} bytes", f"inflates to only {inflated} bytes")

    assert _peak_mib(refuse) < 16


def test_voxel_limit(tmp_path):
    """More than 2**31 voxels are refused even when the bytes are there (a sparse file) or unknowable (gzip)."""
    shape = (2048, 2048, 513)
    assert np.prod(shape, dtype=np.int64) > MAX_VOXELS
    path = _huge_header(tmp_path / "sparse.nii", shape, 0, dtype=np.uint8)
    with open(path, "r+b") as f:
        f.truncate(352 + int(np.prod(shape, dtype=np.int64)))  # sparse: no disk space used
    _refused(ImageTooLargeError, path, str(shape), "2**31")
    gz = _huge_header(tmp_path / "huge.nii.gz", (20000, 20000, 20000), 4096)
    _refused(ImageTooLargeError, gz, "(20000, 20000, 20000)", "8000000000000 voxels", "2**31")


def test_multi_member_gzip_is_read_correctly(tmp_path):
    """A .nii.gz of two gzip members (as bgzip writes): its ISIZE trailer covers only the last member."""
    data = _data()
    plain = _save(tmp_path / "plain.nii", data, _affine(np.diag([0.7, 0.8, 2.5])))
    raw = plain.read_bytes()
    path = tmp_path / "members.nii.gz"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    assert int.from_bytes(path.read_bytes()[-4:], "little") == len(raw) - 1000  # not the whole size
    np.testing.assert_array_equal(read_volume(path).array, data.transpose(2, 1, 0))


def test_truncated_nii_names_the_missing_bytes(tmp_path):
    """nii_truncated (uncompressed): the voxel data ends early."""
    raw = _save(tmp_path / "ok.nii", _data(), _affine(np.diag([0.7, 0.8, 2.5]))).read_bytes()
    path = tmp_path / "trunc.nii"
    path.write_bytes(raw[: len(raw) // 2])
    _refused(CorruptFileError, path, "(12, 10, 6) float32 = 2880 bytes", f"only {len(raw) // 2} bytes", "truncated")


# --- cases that already gave good errors (probe) -------------------------------------------------------


def test_nifti_nan_inf_2d_4d(tmp_path):
    data = _data()
    data[1, 2, 3] = np.nan
    data[4, 5, 1] = np.inf
    affine = _affine(np.diag([0.7, 0.8, 2.5]))
    _refused(NonFiniteError, _save(tmp_path / "nan.nii.gz", data, affine), "2 voxels are NaN or infinite")
    _refused(DimensionError, _save(tmp_path / "slice2d.nii.gz", _data((64, 64)), np.eye(4)),
             "image has shape (64, 64); expected one 3-D volume")
    _refused(DimensionError, _save(tmp_path / "fourd.nii.gz", _data((16, 16, 8, 3)), affine),
             "image has shape (16, 16, 8, 3); expected one 3-D volume")
    one = _data((16, 16, 8, 1))
    vol = read_volume(_save(tmp_path / "fourd1.nii.gz", one, affine))  # nifti_4d_single: one volume is fine
    np.testing.assert_array_equal(vol.array, one[..., 0].transpose(2, 1, 0))


def test_nii_gz_not_gzip_random_bytes_and_truncated_gzip(tmp_path):
    plain = _save(tmp_path / "plain.nii", _data(), _affine(np.diag([0.7, 0.8, 2.5])))
    fake = tmp_path / "plain_really.nii.gz"
    fake.write_bytes(plain.read_bytes())
    _refused(CorruptFileError, fake, "cannot read NIfTI", "is not a gzip file")
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(gzip.compress(np.random.default_rng(0).bytes(4096)))
    _refused(CorruptFileError, garbage, "cannot read NIfTI")
    (tmp_path / "garbage.nii").write_bytes(np.random.default_rng(1).bytes(4096))
    _refused(CorruptFileError, tmp_path / "garbage.nii", "cannot read NIfTI")
    whole = gzip.compress(plain.read_bytes())
    trunc = tmp_path / "trunc.nii.gz"
    trunc.write_bytes(whole[: len(whole) * 2 // 3])
    _refused(CorruptFileError, trunc, "cannot read NIfTI", "EOFError")


def test_empty_axis_is_refused(tmp_path):
    _refused(DimensionError, _save(tmp_path / "e.nii", np.zeros((4, 4, 0), np.float32), np.eye(4)),
             "(4, 4, 0)", "empty")


# --- through the CLI: one line, exit 2, nothing written, input unchanged --------------------------------


@pytest.mark.parametrize("case", ["zero_pixdim", "shear", "huge"])
def test_cli_refuses_at_read_time(tmp_path, capsys, case):
    src = tmp_path / "in"
    src.mkdir()
    if case == "zero_pixdim":
        path = _save(src / "zpix.nii", _data(), None, sform=0, qform=0, pixdim=(0.0, 0.0, 0.0))
        expected = "no usable geometry"
    elif case == "shear":
        columns = np.column_stack([[0.7, 0, 0], [0, 0.7, 0], [0, 1.0, 2.0]])
        path = _save(src / "shear.nii.gz", _data(), _affine(columns), qform=0)
        expected = "sheared NIfTI affine"
    else:
        path = _huge_header(src / "huge.nii", (20000, 20000, 20000), 4096)
        expected = "(20000, 20000, 20000)"
    out = tmp_path / "out" / "seg.nii.gz"
    expect_refusal(capsys, ["segment-lungs", "--input", path, "--out", out], str(path), expected,
                   watch=src, absent=[out, out.parent])


def test_zero_pixdim_stderr_is_one_line_in_a_fresh_process(tmp_path):
    """nibabel logs "setting 0 dims to 1" through a handler bound to the stderr it saw at import, which
    pytest's capture cannot see: run the CLI as a separate process and read its real stderr."""
    path = _save(tmp_path / "zpix.nii", _data(), None, sform=0, qform=0, pixdim=(0.0, 0.0, 0.0))
    proc = subprocess.run([sys.executable, "-m", "ctharmonize", "info", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "no usable geometry" in lines[0], proc.stderr
