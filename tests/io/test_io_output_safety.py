"""No lost input: an output is never the input, inside it or around it, and --overwrite replaces only
earlier ctharmonize outputs (recognised by their output record). Every refusal leaves the input and its
neighbours byte-identical and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from corpus_harness import expect_refusal, run_cli, snapshot

from ctharmonize.io import is_tool_output, read_volume

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "multipath_cyclegan_ct_harmonization"


@pytest.fixture
def study(tmp_path, series_writer, hu_volume):
    """study/series_bone (input), study/series_standard (a sibling) and study/clinical_notes.txt."""
    root = tmp_path / "study"
    series_writer(root / "series_bone", hu_volume((4, 16, 16), seed=1))
    series_writer(root / "series_standard", hu_volume((4, 16, 16), seed=2))
    (root / "clinical_notes.txt").write_text("do not delete\n")
    return root


HARMONIZE = ["harmonize", "--bundle", str(BUNDLE), "--source", "siemens_b50f", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("command", ["convert", "harmonize"])
def test_output_around_the_input_is_refused_even_with_overwrite(capsys, study, command):
    args = HARMONIZE if command == "harmonize" else ["convert"]
    line = expect_refusal(capsys, [*args, "--input", study / "series_bone", "--out", study, "--overwrite"],
                          str(study), "would contain the input", watch=study.parent)
    assert "series_bone" in line


@pytest.mark.parametrize("command", ["convert", "harmonize"])
def test_output_equal_to_the_input_is_refused(capsys, study, tmp_path, command):
    args = HARMONIZE if command == "harmonize" else ["convert"]
    series = study / "series_bone"
    expect_refusal(capsys, [*args, "--input", series, "--out", series, "--overwrite"], "is the input",
                   watch=study.parent)
    nifti = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.float32), np.eye(4)), nifti)
    expect_refusal(capsys, [*args, "--input", nifti, "--out", nifti, "--overwrite"], "is the input",
                   watch=tmp_path)
    # the same file through another spelling (a symlink) is still the input
    link = tmp_path / "link.nii.gz"
    link.symlink_to(nifti)
    expect_refusal(capsys, [*args, "--input", nifti, "--out", link, "--overwrite"], "is the input", watch=tmp_path)


def test_output_inside_the_input_folder_is_refused(capsys, study):
    series = study / "series_bone"
    for out in (series / "harmonized", series / "harmonized.nii.gz", series / "deep" / "x"):
        expect_refusal(capsys, [*HARMONIZE, "--input", series, "--out", out], "inside the input folder",
                       watch=study.parent, absent=[out])


def test_overwrite_never_deletes_what_ctharmonize_did_not_write(capsys, study, tmp_path):
    folder = tmp_path / "x.nii.gz"  # a folder that happens to have a NIfTI name
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    expect_refusal(capsys, ["convert", "--input", study / "series_bone", "--out", folder, "--overwrite"],
                   str(folder), "not written by ctharmonize", watch=tmp_path)
    user_file = tmp_path / "notes.nii.gz"
    user_file.write_bytes(b"user data")
    expect_refusal(capsys, ["convert", "--input", study / "series_bone", "--out", user_file, "--overwrite"],
                   "not written by ctharmonize", watch=tmp_path)


def test_overwrite_replaces_an_earlier_output_and_refuses_one_changed_since(capsys, study, tmp_path):
    out = tmp_path / "converted"
    series = study / "series_bone"
    rc, _, err = run_cli(capsys, "convert", "--input", series, "--out", out)
    assert rc == 0, err
    assert is_tool_output(out) == (True, "")
    record = json.loads((tmp_path / ".converted.ctharmonize.json").read_text())
    assert record["kind"] == "folder" and sorted(record["files"]) == sorted(p.name for p in out.iterdir())
    first = snapshot(out)
    rc, _, err = run_cli(capsys, "convert", "--input", series, "--out", out)
    assert rc == 2 and "already exists" in err and snapshot(out) == first
    rc, _, err = run_cli(capsys, "convert", "--input", series, "--out", out, "--overwrite")
    assert rc == 0, err
    assert snapshot(out) != first  # new UIDs: really rewritten
    np.testing.assert_array_equal(read_volume(out).array, np.rint(read_volume(series).array))  # int16 HU

    (out / "my_annotations.txt").write_text("added by the user")
    expect_refusal(capsys, ["convert", "--input", series, "--out", out, "--overwrite"], "changed since",
                   watch=tmp_path)
    assert (out / "my_annotations.txt").read_text() == "added by the user"


def test_output_parent_problems_are_found_before_any_work(capsys, study, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    expect_refusal(capsys, [*HARMONIZE, "--input", study / "series_bone", "--out", afile / "h.nii.gz"],
                   "is a file, not a folder", watch=tmp_path)
    # /proc refuses new files even for root: the probe file fails, the command stops before reading
    expect_refusal(capsys, [*HARMONIZE, "--input", study / "series_bone", "--out", "/proc/h.nii.gz"],
                   "/proc/h.nii.gz", "cannot write into /proc", watch=study)
    expect_refusal(capsys, [*HARMONIZE, "--input", study / "series_bone", "--out", tmp_path / "h.mha"],
                   "cannot write '.mha'", watch=tmp_path)


def test_paths_with_spaces_and_non_ascii_characters(capsys, tmp_path, series_writer, hu_volume):
    hu = hu_volume((3, 12, 12), seed=4)
    src = tmp_path / "Patient Müller ü 東京" / "série 1"
    series_writer(src, hu)
    out = tmp_path / "out put é" / "harmonisé.nii.gz"
    rc, _, err = run_cli(capsys, "convert", "--input", src, "--out", out)
    assert rc == 0, err
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj).transpose(2, 1, 0), hu)
