"""One CLI style: every command's --help, misspelled flags and bad values refused before any work,
paths always strings, device and batch size checked up front."""

from __future__ import annotations

import inspect
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from corpus_harness import expect_refusal, one_line_error, run_cli

from ctharmonize.cli import COMMANDS, _load

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "multipath_cyclegan_ct_harmonization"


@pytest.fixture
def scan(tmp_path):
    """A small GE BONE-like NIfTI volume (HU) in its own folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "scan.nii.gz"
    hu = np.random.default_rng(0).uniform(-1000, 400, size=(16, 16, 3)).astype(np.float32)
    nib.save(nib.Nifti1Image(hu, np.diag([0.7, 0.7, 2.0, 1.0])), path)
    return path


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help_listing_its_flags(capsys, name):
    rc, out, err = run_cli(capsys, name, "--help")
    assert rc == 0, err
    text = out + err
    params = inspect.signature(_load(name)).parameters
    for param in params:
        assert param in text, f"{name} --help does not mention {param}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_rejects_a_misspelled_flag_naming_it(capsys, name):
    rc, _, err = run_cli(capsys, name, "--colour", "red")
    line = one_line_error(err, "unknown flag --colour", "valid flags:")
    assert rc == 2
    first = next(iter(inspect.signature(_load(name)).parameters))
    assert f"--{first}" in line


def test_misspelled_target_is_refused_before_anything_is_written(capsys, scan, tmp_path):
    out = tmp_path / "h.nii.gz"
    line = expect_refusal(capsys, ["harmonize", "--bundle", BUNDLE, "--input", scan, "--out", out,
                                   "--targt", "ge_standard"], "--targt", "did you mean --target?",
                          watch=tmp_path, absent=[out])
    assert "ctharmonize harmonize: error:" in line


def test_misspelled_compress_on_convert_writes_nothing(capsys, scan, tmp_path):
    out = tmp_path / "c_dcm"
    expect_refusal(capsys, ["convert", "--input", scan, "--out", out, "--compres"], "--compres",
                   "did you mean --compress?", watch=tmp_path, absent=[out])


@pytest.mark.parametrize(("flag", "value", "text"), [
    ("--device", "tpu9", "--device 'tpu9' is not a device"),
    ("--batch_size", "many", "--batch_size expects an integer, got 'many'"),
    ("--batch_size", "0", "--batch_size must be >= 1"),
    ("--amp", "maybe", "amp must be one of auto, bf16, none (or true / false), got 'maybe'"),
])
def test_bad_values_are_refused_before_any_work(capsys, scan, tmp_path, flag, value, text):
    out = tmp_path / "h.nii.gz"
    expect_refusal(capsys, ["harmonize", "--bundle", BUNDLE, "--input", scan, "--out", out, "--source", "ge_bone",
                            flag, value], text, watch=tmp_path, absent=[out])


def test_cuda_on_a_machine_without_it_is_one_line(capsys, scan, tmp_path):
    import torch

    if torch.cuda.is_available():  # the check under test is the CPU-only case; on a GPU cuda must run
        rc, _, err = run_cli(capsys, "harmonize", "--bundle", BUNDLE, "--input", scan, "--out",
                             tmp_path / "h.nii.gz", "--source", "ge_bone", "--device", "cuda:99")
        one_line_error(err, "--device 'cuda:99' is not available")
        return
    out = tmp_path / "h.nii.gz"
    expect_refusal(capsys, ["harmonize", "--bundle", BUNDLE, "--input", scan, "--out", out, "--source", "ge_bone",
                            "--device", "cuda"], "--device 'cuda' is not available", "--device cpu",
                   watch=tmp_path, absent=[out])


@pytest.mark.parametrize("folder_name", ["True", "None", "[1, 2]", "0", "1e3"])
def test_paths_are_always_strings(capsys, tmp_path, folder_name, series_writer, hu_volume):
    hu = hu_volume((2, 8, 8))
    series_writer(tmp_path / folder_name, hu)
    for args in ([folder_name], ["--input", folder_name]):
        rc, out, err = run_cli(capsys, "info", *args, cwd=tmp_path)
        assert rc == 0, err
        assert "shape (Z, Y, X):      (2, 8, 8)" in out


def test_usage_errors(capsys, scan):
    rc, _, err = run_cli(capsys, "convert", "--input", scan)
    assert rc == 2 and one_line_error(err, "missing required argument --out")
    rc, _, err = run_cli(capsys, "info", scan, scan)
    assert rc == 2 and one_line_error(err, "too many arguments")
    rc, _, err = run_cli(capsys, "info", "--input", scan, "--input", scan)
    assert rc == 2 and one_line_error(err, "--input is given twice")
    rc, _, err = run_cli(capsys, "info", "-dash")
    assert rc == 2 and one_line_error(err, "unknown flag -dash", "./-dash")
    rc, _, err = run_cli(capsys, "harmonise")
    assert rc == 2 and "did you mean harmonize?" in err


def test_bool_flag_forms(capsys, tmp_path, series_writer, hu_volume):
    """--flag, --flag=false, --noflag and --flag true all reach the function as bools."""
    series_writer(tmp_path / "s", hu_volume((2, 8, 8)))
    for extra, ok in ((["--allow_tilt"], True), (["--allow_tilt=false"], True), (["--noallow_tilt"], True),
                      (["--allow_tilt", "true"], True), (["--allow_tilt", "perhaps"], False)):
        rc, _, err = run_cli(capsys, "info", "--input", tmp_path / "s", *extra)
        assert (rc == 0) == ok, (extra, err)
