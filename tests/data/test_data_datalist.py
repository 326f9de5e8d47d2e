import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ctharmonize.data import filter_datalist, load_datalist, save_datalist
from ctharmonize.domains import default_registry
from ctharmonize.errors import ConfigError, DatalistError, OutputExistsError, UnknownDomainError


@pytest.fixture
def dataset(tmp_path):
    """A folder with a few (empty) referenced files and a valid datalist."""
    root = tmp_path / "ds"
    for rel in ("images/s0_b30f.nii.gz", "images/s0_b50f.nii.gz", "images/s1_std.nii.gz", "lungs/s0_lung.nii.gz"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    (root / "dicom" / "s1_bone").mkdir(parents=True)  # a DICOM series folder is a valid path
    doc = {
        "name": "toy",
        "labels": {"right_lung": 1, "left_lung": 2},
        "data": [
            {"image": "images/s0_b30f.nii.gz", "kernel": "siemens_b30f", "subject": "s0", "split": "train",
             "lung": "lungs/s0_lung.nii.gz", "site_note": "annotated"},
            {"image": "images/s0_b50f.nii.gz", "kernel": "siemens_b50f", "subject": "s0", "split": "train",
             "pair_id": 7},
            {"image": "images/s1_std.nii.gz", "kernel": "ge_standard", "subject": "s1", "split": "test"},
            {"image": "dicom/s1_bone", "kernel": "ge_bone", "subject": "s1"},
        ],
    }
    path = root / "datalist.json"
    path.write_text(json.dumps(doc))
    return path


def _write(tmp_path, doc, name="d.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_load_resolves_relative_to_datalist_folder_not_cwd(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a different folder than the datalist's
    before = hashlib.sha256(dataset.read_bytes()).hexdigest()
    entries = load_datalist(dataset, registry=default_registry())
    assert len(entries) == 4
    root = os.path.abspath(dataset.parent)
    assert entries[0]["image"] == os.path.join(root, "images", "s0_b30f.nii.gz")
    assert entries[0]["lung"] == os.path.join(root, "lungs", "s0_lung.nii.gz")
    assert entries[3]["image"] == os.path.join(root, "dicom", "s1_bone")
    assert entries[0]["site_note"] == "annotated" and entries[1]["pair_id"] == 7
    assert "split" not in entries[3]
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == before  # input untouched


def test_decathlon_sections(tmp_path):
    for name in ("a.nii.gz", "b.nii.gz", "c.nii.gz", "la.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    path = _write(tmp_path, {"training": [{"image": "a.nii.gz", "label": "la.nii.gz"}],
                             "validation": [{"image": "b.nii.gz", "split": "validation"}],
                             "test": ["c.nii.gz"], "numTraining": 1})
    entries = load_datalist(path)
    assert [e["split"] for e in entries] == ["train", "validation", "test"]
    assert entries[2] == {"image": str(tmp_path / "c.nii.gz"), "split": "test"}
    assert entries[0]["label"] == str(tmp_path / "la.nii.gz")


@pytest.mark.parametrize(
    "doc, fragment",
    [
        ({"data": [{"image": "a"}, {"kernel": "ge_bone"}]}, "data[1]: 'image' is a required property"),
        ({"data": [{"image": "a", "split": "tarin"}]}, "data[0].split: 'tarin' is not one of"),
        ({"data": [{"image": 3}]}, "data[0].image: 3 is not of type 'string'"),
        ({"data": [{"image": ""}]}, "data[0].image"),
        ({"data": [{"image": "a", "grund_truth": "g"}]}, "unknown key 'grund_truth' (did you mean 'ground_truth'?)"),
        ({"data": [{"image": "a", "bad key": 1}]}, "data[0]: 'bad key' does not match"),
        ({"data": {"image": "a"}}, "data: {'image': 'a'} is not of type 'array'"),
        ({"labels": {"lung": -1}, "data": []}, "labels.lung"),
        ({"dta": []}, "no entries: expected a 'data' list"),
        ([{"image": "a"}], "(top level)"),
        ({"training": [{"image": "a", "split": "test"}]}, "training[0].split: 'test' contradicts the 'training'"),
        ("{\"data\": [", "not valid JSON: line 1"),
    ],
)
def test_invalid_datalists_give_one_line_errors(tmp_path, doc, fragment):
    path = _write(tmp_path, doc)
    with pytest.raises(DatalistError) as info:
        load_datalist(path, check_files=False)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and fragment in msg and "\n" not in msg


def test_missing_files(dataset, tmp_path):
    os.remove(dataset.parent / "lungs" / "s0_lung.nii.gz")
    with pytest.raises(DatalistError, match=r"data\[0\]\.lung: file not found: .*s0_lung\.nii\.gz"):
        load_datalist(dataset)
    assert len(load_datalist(dataset, check_files=False)) == 4
    with pytest.raises(DatalistError, match="file not found"):
        load_datalist(tmp_path / "nothing.json")


def test_registry_checks_kernel_names(tmp_path):
    path = _write(tmp_path, {"data": [{"image": "a", "kernel": "ge_bone"}, {"image": "b", "kernel": "B30f"}]})
    assert len(load_datalist(path, check_files=False)) == 2  # no registry: no check
    with pytest.raises(UnknownDomainError) as info:
        load_datalist(path, check_files=False, registry=default_registry())
    assert str(info.value).startswith(f"{path}: data[1].kernel: unknown domain 'B30f'")
    reg_file = tmp_path / "reg.json"
    reg_file.write_text(json.dumps({"vendors": {"x": ["X"]}, "domains": {
        "ge_bone": {"vendor": "x", "kernels": ["K"], "sharpness": "sharp"},
        "x_b30f": {"vendor": "x", "kernels": ["B30f"], "sharpness": "soft"}}}))
    custom = _write(tmp_path, {"data": [{"image": "a", "kernel": "x_b30f", "source_kernel": "ge_bone"}]}, "c.json")
    assert load_datalist(custom, check_files=False, registry=reg_file)[0]["kernel"] == "x_b30f"
    with pytest.raises(UnknownDomainError, match=r"data\[0\]\.kernel: unknown domain 'x_b30f'"):
        load_datalist(custom, check_files=False, registry=default_registry())


def test_save_round_trip_with_relative_paths(dataset, tmp_path):
    entries = load_datalist(dataset)
    entries[0]["weight"] = np.float32(0.5)  # numpy scalars in annotations are fine
    snapshot = json.dumps(entries, default=str)
    out = tmp_path / "ds" / "sub" / "copy.json"
    save_datalist(entries, out, name="copy")
    assert json.dumps(entries, default=str) == snapshot  # input entries not modified
    written = json.loads(out.read_text())
    assert written["name"] == "copy"
    # outside the datalist's folder (ds/sub): written absolute, since relative paths may not escape it
    assert written["data"][0]["image"] == Path(os.path.abspath(dataset.parent), "images", "s0_b30f.nii.gz").as_posix()
    assert written["data"][3]["image"] == Path(os.path.abspath(dataset.parent), "dicom", "s1_bone").as_posix()
    assert written["data"][0]["weight"] == 0.5
    again = load_datalist(out)
    for a, b in zip(entries, again, strict=True):
        assert a["image"] == b["image"] and a.get("lung") == b.get("lung") and a.get("kernel") == b.get("kernel")


def test_save_keeps_relative_paths_and_refuses_overwrite(tmp_path):
    out = tmp_path / "d.json"
    save_datalist([{"image": "images/a.nii.gz", "kernel": "ge_bone"}], out)
    assert json.loads(out.read_text())["data"][0]["image"] == "images/a.nii.gz"
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        save_datalist([{"image": "b.nii.gz"}], out)
    assert out.read_bytes() == before
    save_datalist({"name": "n", "data": [{"image": "b.nii.gz"}]}, out, overwrite=True)
    assert json.loads(out.read_text()) == {"name": "n", "data": [{"image": "b.nii.gz"}]}


def test_save_rejects_invalid_entries_and_writes_nothing(tmp_path):
    out = tmp_path / "d.json"
    with pytest.raises(DatalistError, match=r"data\[0\]: 'image' is a required property"):
        save_datalist([{"kernel": "ge_bone"}], out)
    with pytest.raises(DatalistError, match="cannot write datalist"):
        save_datalist([{"image": "a", "note": object()}], out)
    assert list(tmp_path.iterdir()) == []


def test_filter_datalist(dataset):
    entries = load_datalist(dataset)
    assert [e["kernel"] for e in filter_datalist(entries, split="train")] == ["siemens_b30f", "siemens_b50f"]
    assert [e["kernel"] for e in filter_datalist(entries, kernel=["ge_bone", "ge_standard"])] == ["ge_standard",
                                                                                                   "ge_bone"]
    assert filter_datalist(entries, split="test", kernel="siemens_b30f") == []
    assert len(filter_datalist(entries)) == 4
    with pytest.raises(ConfigError, match="unknown split 'tarin'"):
        filter_datalist(entries, split="tarin")
