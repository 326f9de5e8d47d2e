"""Dataset writer and the ``ctharmonize simulate`` command."""

import json

import nibabel as nib
import numpy as np
import pytest

from ctharmonize.cli import main
from ctharmonize.data import load_datalist
from ctharmonize.errors import OutputExistsError
from ctharmonize.io import read_volume
from ctharmonize.simulation import TISSUE_LABELS, generate_dataset
from ctharmonize.simulation.dataset import assign_splits


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ds"
    path = generate_dataset(out, subjects=3, size=48, slices=2, seed=1, progress=False)
    return out, path


def test_layout_and_datalist(dataset):
    out, path = dataset
    assert path == out / "datalist.json"
    entries = load_datalist(path)  # validates against the shipped schema and checks the files
    assert len(entries) == 12  # 2 vendors x 3 subjects x 2 kernels
    doc = json.loads(path.read_text())
    for e in doc["data"]:
        for key in ("image", "labels", "lung", "ground_truth"):
            assert not e[key].startswith("/") and (out / e[key]).is_file()
    kernels = {(e["vendor"], e["kernel"]) for e in doc["data"]}
    assert kernels == {("siemens", "siemens_b30f"), ("siemens", "siemens_b50f"), ("ge", "ge_standard"), ("ge", "ge_bone")}
    for vendor in ("siemens", "ge"):
        splits = [e["split"] for e in doc["data"] if e["vendor"] == vendor]
        assert "test" in splits and "train" in splits
    subjects = {e["subject"] for e in doc["data"]}
    assert {s.split("-")[1] for s in subjects} == {"siemens", "ge"} and len(subjects) == 6
    labels = json.loads((out / "labels.json").read_text())
    assert labels["labels"] == {str(k): v for k, v in TISSUE_LABELS.items()}


def test_images_align_with_labels_and_keep_vendor_padding(dataset):
    out, path = dataset
    doc = json.loads(path.read_text())
    e = next(e for e in doc["data"] if e["kernel"] == "ge_bone")
    vol = read_volume(out / e["image"])
    gt = read_volume(out / e["ground_truth"])
    lab = nib.load(out / e["labels"])
    assert vol.shape == gt.shape == (2, 48, 48)
    np.testing.assert_allclose(vol.affine_ras(), lab.affine, atol=1e-4)
    assert vol.header.padding_value == -3024.0 and vol.fov_mask is not None and not vol.fov_mask.all()
    lung = np.transpose(np.asarray(nib.load(out / e["lung"]).dataobj), (2, 1, 0))
    assert set(np.unique(lung)) <= {0, 1, 2} and (lung == 1).any()
    # soft and sharp images of one subject are pixel-aligned renditions of the same anatomy
    soft = read_volume(out / next(x["image"] for x in doc["data"] if x["subject"] == e["subject"] and x["kernel"] == "ge_standard"))
    body = lung > 0
    assert abs(soft.array[body].mean() - vol.array[body].mean()) < 40


def test_refuses_to_overwrite_unless_asked(dataset, tmp_path):
    out, _ = dataset
    with pytest.raises(OutputExistsError):
        generate_dataset(out, subjects=1, size=32, slices=1, progress=False)
    target = tmp_path / "again"
    generate_dataset(target, subjects=1, size=32, slices=1, vendors=("siemens",), progress=False)
    generate_dataset(target, subjects=1, size=32, slices=1, vendors=("ge",), overwrite=True, progress=False)
    doc = json.loads((target / "datalist.json").read_text())
    assert {e["vendor"] for e in doc["data"]} == {"ge"}


def test_splits():
    assert assign_splits(1) == ["train"]
    s = assign_splits(5)
    assert s.count("test") == 1 and s.count("validation") == 1 and s.count("train") == 3
    assert assign_splits(10).count("test") == 2


def test_cli_simulate_with_dicom(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["simulate", "--out", str(out), "--subjects", "1", "--size", "32", "--slices", "2",
               "--vendors", "siemens", "--dicom", "--progress", "False"])
    assert rc == 0
    series = out / "dicom" / "sim-siemens-000_siemens_b30f"
    vol = read_volume(series)
    assert vol.header.manufacturer == "SIEMENS" and vol.header.kernel == "B30f" and vol.shape == (2, 32, 32)
    assert main(["simulate", "--out", str(out), "--subjects", "1", "--size", "32", "--slices", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
