"""FOV masks and the ``info`` / ``convert`` commands."""

from __future__ import annotations

import numpy as np
import pytest

from ctharmonize.cli import main
from ctharmonize.io import circular_fov_mask, detect_padding_mask, read_volume
from ctharmonize.io.commands import convert, info


def test_detect_padding_mask():
    hu = np.array([[-2048.0, -3024.0, -2000.0, -1024.0], [-1500.0, 0.0, -2047.0, 3000.0]])
    np.testing.assert_array_equal(detect_padding_mask(hu), [[1, 1, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(detect_padding_mask(hu, padding_values=[-1500.0]), [[0, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(detect_padding_mask(hu, padding_values=(), padding_range=(-2047.0, -1500.0)),
                                  [[0, 0, 1, 0], [1, 0, 1, 0]])


def test_circular_fov_mask_matches_explicit_circle():
    mask = circular_fov_mask((6, 8))
    yy, xx = np.mgrid[0:6, 0:8]
    expected = (yy - 2.5) ** 2 + (xx - 3.5) ** 2 <= 3.0**2  # inscribed: radius = min(6, 8) / 2
    np.testing.assert_array_equal(mask, expected)
    assert mask[2, 3] and not mask[0, 0] and not mask[5, 7]
    small = circular_fov_mask((3, 6, 8), radius_fraction=0.5, center=(1.0, 2.0))
    assert small.shape == (3, 6, 8)
    expected = (yy - 1.0) ** 2 + (xx - 2.0) ** 2 <= 1.5**2
    for k in range(3):
        np.testing.assert_array_equal(small[k], expected)
    big = circular_fov_mask((512, 512))
    assert abs(big.sum() / big.size - np.pi / 4) < 0.01  # disk area / square area
    with pytest.raises(ValueError):
        circular_fov_mask((4,))


def test_info_prints_summary(ct_series, capsys):
    info(str(ct_series["path"]))
    out = capsys.readouterr().out
    assert "(5, 12, 10)" in out and "SIEMENS" in out and "Br40d" in out and "inside FOV:           100.0%" in out


def test_convert_dicom_to_nifti_and_back(ct_series, tmp_path):
    nii = tmp_path / "v.nii.gz"
    assert "wrote" in convert(str(ct_series["path"]), str(nii))
    np.testing.assert_array_equal(read_volume(nii).array, ct_series["hu"])
    hu_int = np.rint(ct_series["hu"])
    convert(str(nii), str(tmp_path / "dcm"))
    np.testing.assert_array_equal(read_volume(tmp_path / "dcm").array, hu_int)


def test_cli_reports_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "empty") in err
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "o.nii.gz")]) == 2
    assert not (tmp_path / "o.nii.gz").exists()
