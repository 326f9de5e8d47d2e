"""Datalist path safety: relative paths may not lead outside the datalist's folder (``..``, symlinks),
absolute paths are allowed, ids may not carry path separators or ``..``; schema failures name the field."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ctharmonize.cli import main
from ctharmonize.data import datalist_entries, load_datalist, save_datalist
from ctharmonize.data.datalist import PATH_KEYS
from ctharmonize.errors import DatalistError


def _tree(folder: Path) -> Path:
    """root/a/b/datalist.json with root/a/b/images/s0.nii.gz, and root/outside.nii.gz beside it."""
    (folder / "a" / "b" / "images").mkdir(parents=True)
    (folder / "a" / "b" / "images" / "s0.nii.gz").write_bytes(b"x")
    (folder / "outside.nii.gz").write_bytes(b"y")
    return folder / "a" / "b"


def _datalist(folder: Path, *entries: dict, section: str = "data") -> Path:
    path = folder / "datalist.json"
    path.write_text(json.dumps({section: list(entries)}))
    return path


def _refused(path: Path, *must_contain: str, check_files: bool = True) -> str:
    with pytest.raises(DatalistError) as info:
        load_datalist(path, check_files=check_files)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for text in must_contain:
        assert text in message, (text, message)
    return message


@pytest.mark.parametrize("check_files", [True, False])
def test_image_path_traversal_is_refused(tmp_path, check_files):
    """datalist_traversal: image '../../../../etc/passwd' (exists, so only the folder rule stops it)."""
    folder = _tree(tmp_path)
    rel = os.path.relpath("/etc/passwd", folder)
    assert os.path.exists(folder / rel)
    path = _datalist(folder, {"image": rel, "kernel": "ge_bone"})
    _refused(path, f"data[0].image: {rel!r} leads outside the datalist's folder", "(to /etc/passwd)",
             "give an absolute path", check_files=check_files)


@pytest.mark.parametrize("key", [k for k in PATH_KEYS if k != "image"])
def test_every_path_key_is_checked(tmp_path, key):
    """datalist_traversal_lung: lung '../../etc/hostname'; the same for every other path field."""
    folder = _tree(tmp_path)
    path = _datalist(folder, {"image": "images/s0.nii.gz"}, {"image": "images/s0.nii.gz", key: "../../outside.nii.gz"})
    _refused(path, f"data[1].{key}: '../../outside.nii.gz' leads outside", str(tmp_path / "outside.nii.gz"))


def test_decathlon_string_entry_is_checked(tmp_path):
    folder = _tree(tmp_path)
    path = folder / "d.json"
    path.write_text(json.dumps({"training": [{"image": "images/s0.nii.gz"}], "test": ["../../outside.nii.gz"]}))
    _refused(path, "test[0].image: '../../outside.nii.gz' leads outside")


def test_symlink_out_of_the_folder_is_refused_and_inside_is_fine(tmp_path):
    folder = _tree(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "s1.nii.gz").write_bytes(b"z")
    (folder / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (folder / "alias").symlink_to(folder / "images", target_is_directory=True)
    _refused(_datalist(folder, {"image": "linked/s1.nii.gz"}), "data[0].image: 'linked/s1.nii.gz' leads outside",
             str(tmp_path / "elsewhere" / "s1.nii.gz"))
    entries = load_datalist(_datalist(folder, {"image": "alias/s0.nii.gz"}))
    assert entries[0]["image"] == os.path.join(os.path.abspath(folder), "alias", "s0.nii.gz")


def test_dotdot_inside_the_folder_absolute_and_home_paths_are_allowed(tmp_path, monkeypatch):
    folder = _tree(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = _datalist(folder, {"image": "images/../images/s0.nii.gz"}, {"image": str(tmp_path / "outside.nii.gz")},
                     {"image": "~/outside.nii.gz"})
    entries = load_datalist(path)
    root = os.path.abspath(folder)
    assert [e["image"] for e in entries] == [os.path.join(root, "images", "s0.nii.gz"),
                                             os.path.join(os.path.abspath(tmp_path), "outside.nii.gz"),
                                             os.path.join(os.path.abspath(tmp_path), "outside.nii.gz")]


def test_save_writes_outside_paths_absolute_and_reads_back(tmp_path):
    folder = _tree(tmp_path)
    inside = os.path.join(os.path.abspath(folder), "images", "s0.nii.gz")
    outside = os.path.join(os.path.abspath(tmp_path), "outside.nii.gz")
    out = save_datalist([{"image": inside, "lung": "../../outside.nii.gz"}, {"image": outside}], folder / "saved.json")
    written = json.loads(out.read_text())["data"]
    assert written == [{"image": "images/s0.nii.gz", "lung": Path(outside).as_posix()}, {"image": Path(outside).as_posix()}]
    assert [(e["image"], e.get("lung")) for e in load_datalist(out)] == [(inside, outside), (outside, None)]


@pytest.mark.parametrize("key, value, shown", [
    ("subject", "../..PWNED_subject", "'..'"),
    ("subject", "s0/../../x", "'/'"),
    ("subject", "s0\\x", "'\\\\'"),
    ("subject", "s0\x00", "'\\x00'"),
    ("kernel", "../ge_bone", "'..'"),
    ("vendor", "ge/..", "'/'"),
    ("target", "x..y", "'..'"),
    ("pair_id", "p/1", "'/'"),
])
def test_ids_with_path_parts_are_refused(tmp_path, key, value, shown):
    """datalist_traversal_lung: subject '../..PWNED_subject'. Ids name output files (harmonize_datalist)."""
    folder = _tree(tmp_path)
    path = _datalist(folder, {"image": "images/s0.nii.gz", "subject": "s0"}, {"image": "images/s0.nii.gz", key: value})
    _refused(path, f"data[1].{key}: {value!r} contains {shown}", "ids name output files")
    with pytest.raises(DatalistError):  # the evaluation / harmonize_datalist entry point too
        datalist_entries(path)
    with pytest.raises(DatalistError, match=key):
        save_datalist([{"image": "images/s0.nii.gz", key: value}], folder / "out.json")
    assert not (folder / "out.json").exists()


def test_ordinary_ids_are_accepted(tmp_path):
    folder = _tree(tmp_path)
    path = _datalist(folder, {"image": "images/s0.nii.gz", "subject": "LIDC-IDRI-0001.v2", "kernel": "siemens_b30f",
                              "vendor": "siemens", "pair_id": 3})
    assert load_datalist(path)[0]["subject"] == "LIDC-IDRI-0001.v2"


# --- through the CLI -----------------------------------------------------------------------------------


def _digest(folder: Path) -> dict[str, str]:
    return {os.fspath(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", ["traversal", "subject", "schema"])
def test_validate_datalist_cli_one_line(tmp_path, capsys, case):
    folder = _tree(tmp_path)
    if case == "traversal":
        path = _datalist(folder, {"image": os.path.relpath("/etc/passwd", folder)})
        expected = ["data[0].image", "leads outside the datalist's folder"]
    elif case == "subject":
        path = _datalist(folder, {"image": "images/s0.nii.gz", "lung": "images/s0.nii.gz", "subject": "../..PWNED_subject"})
        expected = ["data[0].subject", "'../..PWNED_subject'"]
    else:  # datalist_schema_fail
        path = _datalist(folder, {"image": "images/s0.nii.gz", "split": "testing"})
        expected = ["data[0].split: 'testing' is not one of ['train', 'validation', 'test']"]
    before = _digest(tmp_path)
    capsys.readouterr()
    rc = main(["validate-datalist", "--datalist", os.fspath(path)])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and "Traceback" not in err and len(lines) == 1, (rc, err)
    for text in [str(path), *expected]:
        assert text in lines[0], (text, lines[0])
    assert "valid" not in out
    assert _digest(tmp_path) == before
