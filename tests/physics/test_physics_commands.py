"""``ctharmonize mtf / nps / detectability`` on NIfTI and DICOM: results, files, errors, overwrite."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from physics_volumes import chest, noise_free

from ctharmonize.cli import main
from ctharmonize.io import write_volume
from ctharmonize.io.volume import Volume
from ctharmonize.physics import skin_air_mtf

PNG = b"\x89PNG\r\n\x1a\n"


def _run(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err: str, *texts: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    for text in texts:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The simulated Siemens B50f chest as NIfTI and as a DICOM series, and its noise-free twin as NIfTI."""
    root = tmp_path_factory.mktemp("physics_cli")
    _, vols = chest(0)
    vol = vols["siemens_b50f"]
    nifti = write_volume(vol, root / "b50f.nii.gz")
    dicom = write_volume(vol, root / "b50f_dicom")
    truth = write_volume(noise_free(0)["siemens_b50f"], root / "truth.nii.gz")
    return {"root": root, "volume": vol, "nifti": nifti, "dicom": dicom, "truth": truth}


@pytest.mark.parametrize("fmt", ["nifti", "dicom"])
def test_mtf_command_on_nifti_and_dicom(capsys, files, fmt, tmp_path):
    out = tmp_path / f"mtf_{fmt}"
    rc, stdout, err = _run(capsys, "mtf", "--input", files[fmt], "--out", out)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["mtf.json", "mtf.png"]
    assert (out / "mtf.png").read_bytes()[:8] == PNG
    doc = json.loads((out / "mtf.json").read_text())
    v = files["volume"]
    api = skin_air_mtf(v.array, v.spacing, fov_mask=v.fov_mask)
    # the files carry no FOV mask (NIfTI) or integer HU (DICOM): the same result up to these details
    assert doc["mtf50_lp_cm"] == pytest.approx(api.mtf50, rel=0.01)
    assert json.loads(stdout)["mtf50_lp_cm"] == pytest.approx(doc["mtf50_lp_cm"])
    m2 = np.asarray(doc["mtf2d_64"])
    assert m2.shape == (64, 64) and m2[32, 32] == pytest.approx(1.0)
    assert len(doc["samples_64"]["mtf"]) == 64
    assert doc["kernel"] == ("B50f" if fmt == "dicom" else None)  # NIfTI has no ConvolutionKernel
    assert (out.parent / f".{out.name}.ctharmonize.json").is_file()  # output record: ours to overwrite


def test_nps_and_detectability_commands(capsys, files, tmp_path):
    rc, _, err = _run(capsys, "nps", "--input", files["nifti"], "--out", tmp_path / "nps", "--reference",
                      files["truth"])
    assert rc == 0, err
    doc = json.loads((tmp_path / "nps" / "nps.json").read_text())
    assert doc["source"] == "reference" and doc["noise_sd_hu"] > 50 and doc["peak_frequency_lp_cm"] > 2.5
    assert doc["variance_from_nps_hu2"] == pytest.approx(doc["noise_sd_hu"] ** 2, rel=1e-6)
    assert (tmp_path / "nps" / "nps.png").read_bytes()[:8] == PNG
    rc, stdout, err = _run(capsys, "detectability", "--input", files["dicom"], "--out", tmp_path / "det",
                           "--reference", files["truth"], "--contrast_hu", "200")
    assert rc == 0, err
    det = json.loads((tmp_path / "det" / "detectability.json").read_text())
    assert det["model"]["contrast_hu"] == 200.0 and det["model"]["diameter_mm"] == 4.0
    assert det["dprime_npwe"] > 0 and det["mtf"]["mtf50_lp_cm"] > 5.0
    assert json.loads(stdout)["dprime_npwe"] == pytest.approx(det["dprime_npwe"])
    assert (tmp_path / "det" / "image_quality.png").read_bytes()[:8] == PNG


def test_no_overwrite_unless_asked(capsys, files, tmp_path):
    out = tmp_path / "m"
    assert _run(capsys, "mtf", "--input", files["nifti"], "--out", out)[0] == 0
    before = (out / "mtf.json").read_bytes()
    rc, _, err = _run(capsys, "mtf", "--input", files["nifti"], "--out", out)
    assert rc == 2
    _one_line(err, "ctharmonize mtf: error:", str(out), "already exists")
    assert (out / "mtf.json").read_bytes() == before
    assert _run(capsys, "mtf", "--input", files["nifti"], "--out", out, "--overwrite")[0] == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    rc, _, err = _run(capsys, "nps", "--input", files["nifti"], "--out", mine, "--overwrite")
    assert rc == 2 and "not written by ctharmonize" in err  # a folder the user made is never replaced


@pytest.mark.parametrize("command", ["mtf", "nps", "detectability"])
def test_bad_inputs_are_one_line_naming_the_file_with_no_output(capsys, tmp_path, command):
    corrupt = tmp_path / "broken.nii.gz"
    corrupt.write_bytes(b"this is not a NIfTI file")
    air = Volume(np.full((2, 64, 64), -1000.0, np.float32), (1.0, 1.0, 2.0))
    empty = write_volume(air, tmp_path / "air.nii.gz")
    for bad, text in ((corrupt, "broken.nii.gz"), (tmp_path / "missing", "missing"), (empty, "air.nii.gz")):
        out = tmp_path / f"out_{command}"
        rc, _, err = _run(capsys, command, "--input", bad, "--out", out)
        assert rc == 2
        _one_line(err, f"ctharmonize {command}: error:", text)
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out_{command}")]  # no temporaries


def test_a_reference_on_another_grid_is_refused(capsys, files, tmp_path):
    small = write_volume(Volume(np.zeros((3, 32, 32), np.float32), (1.0, 1.0, 2.5)), tmp_path / "small.nii.gz")
    rc, _, err = _run(capsys, "nps", "--input", files["nifti"], "--out", tmp_path / "n", "--reference", small)
    assert rc == 2
    _one_line(err, "small.nii.gz", "differs from the image")
    assert not (tmp_path / "n").exists()


def test_help_lists_the_flags(capsys):
    rc, out, _ = _run(capsys, "detectability", "--help")
    assert rc == 0
    for flag in ("--input", "--out", "--reference", "--diameter_mm", "--viewing_distance_mm", "--alpha"):
        assert flag in out
