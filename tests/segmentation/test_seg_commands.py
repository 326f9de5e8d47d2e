"""segment-lungs / body-composition commands: NIfTI in, uint8 NIfTI label map out."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from seg_phantoms import chest_phantom, dice

from ctharmonize.cli import main
from ctharmonize.errors import OutputExistsError, UnsupportedFormatError
from ctharmonize.io import Volume, write_volume
from ctharmonize.segmentation.commands import body_composition, segment_lungs


@pytest.fixture(scope="module")
def ct_path(tmp_path_factory):
    ph = chest_phantom(noise_sd=40.0, seed=9)
    path = tmp_path_factory.mktemp("ct") / "ct.nii.gz"
    write_volume(Volume(ph.hu, spacing=ph.spacing, origin=(10.0, -20.0, 30.0)), path)
    return path, ph


def test_segment_lungs_command(ct_path, tmp_path):
    path, ph = ct_path
    out = tmp_path / "lung.nii.gz"
    summary = segment_lungs(str(path), str(out))
    assert "right lung" in summary and "mL" in summary and "\n" not in summary
    img = nib.load(out)
    assert img.get_data_dtype() == np.uint8
    assert np.allclose(img.affine, nib.load(path).affine)
    lung = np.transpose(np.asarray(img.dataobj), (2, 1, 0))
    assert dice(lung == 1, ph.lung == 1) >= 0.95 and dice(lung == 2, ph.lung == 2) >= 0.95
    expected_ml = np.count_nonzero(lung == 1) * np.prod(ph.spacing) / 1000.0
    assert f"right lung {expected_ml:.1f} mL" in summary
    with pytest.raises(OutputExistsError):
        segment_lungs(str(path), str(out))
    segment_lungs(str(path), str(out), overwrite=True)
    with pytest.raises(UnsupportedFormatError, match="NIfTI"):
        segment_lungs(str(path), str(tmp_path / "lung.png"))


def test_body_composition_command_with_lung_file(ct_path, tmp_path):
    path, ph = ct_path
    lung_out = tmp_path / "lung.nii.gz"
    segment_lungs(str(path), str(lung_out))
    out = tmp_path / "tissue.nii"
    summary = body_composition(str(path), str(out), lung=str(lung_out))
    assert "skeletal muscle" in summary
    tissue = np.transpose(np.asarray(nib.load(out).dataobj), (2, 1, 0))
    lung = np.transpose(np.asarray(nib.load(lung_out).dataobj), (2, 1, 0))
    assert np.array_equal(tissue == 1, lung == 1)
    assert dice(tissue == 6, ph.sat) > 0.85


def test_cli_error_is_one_line(ct_path, tmp_path, capsys):
    path, _ = ct_path
    out = tmp_path / "x.nii.gz"
    out.write_bytes(b"")
    assert main(["segment-lungs", str(path), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err
    assert main(["segment-lungs", str(path), str(tmp_path / "y.nii.gz"), "--backend", "lungmask",
                 "--weights", str(tmp_path / "missing.pth")]) == 2
    assert "lungmask weights file not found" in capsys.readouterr().err
