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
from ctharmonize.simulation.vendors import get_vendor


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


def _body_corr(a: np.ndarray, b: np.ndarray) -> float:
    body = ((a > -500) | (b > -500)) & (a > -1500) & (b > -1500)  # inside both FOVs (padding -2048/-3024)
    a, b = np.clip(a, -1000, 1000), np.clip(b, -1000, 1000)
    return float(np.corrcoef(a[body], b[body])[0, 1])


def test_traveling_subjects_are_scanned_at_every_site(dataset, tmp_path):
    out = tmp_path / "travel"
    path = generate_dataset(out, subjects=3, size=48, slices=2, seed=1, vary=True, progress=False, traveling=True)
    doc = json.loads(path.read_text())
    load_datalist(path)
    assert len(doc["data"]) == 12 and len({e["subject"] for e in doc["data"]}) == 3
    for s in ("sim-travel-000", "sim-travel-001", "sim-travel-002"):
        mine = [e for e in doc["data"] if e["subject"] == s]
        assert sorted(e["kernel"] for e in mine) == ["ge_bone", "ge_standard", "siemens_b30f", "siemens_b50f"]
        assert {e["pair_id"] for e in mine} == {s} and len({e["labels"] for e in mine}) == 1
        assert len({(e["acquisition"]["fov_mm"], e["acquisition"]["slice_thickness_mm"]) for e in mine}) == 1
        ge_mas = next(e for e in mine if e["vendor"] == "ge")["acquisition"]["mas"]
        lo, hi = get_vendor("ge").mas_range
        assert lo <= ge_mas <= hi
    # the first vendor's scans are those of the same seed's per-vendor set (same phantom and noise)
    drawn = tmp_path / "per_vendor"
    generate_dataset(drawn, subjects=3, size=48, slices=2, seed=1, vary=True, vendors=("siemens",), progress=False)
    for i in range(3):
        a = nib.load(out / "images" / f"sim-travel-{i:03d}_siemens_b30f.nii.gz").get_fdata()
        b = nib.load(drawn / "images" / f"sim-siemens-{i:03d}_siemens_b30f.nii.gz").get_fdata()
        np.testing.assert_array_equal(a, b)
    # ... and the other vendor scans the same anatomy: its soft image matches the Siemens soft image
    # far better than a different subject's GE scan does (the per-vendor set's anatomy differs)
    siemens = nib.load(out / "images" / "sim-travel-000_siemens_b30f.nii.gz").get_fdata()
    ge_same = nib.load(out / "images" / "sim-travel-000_ge_standard.nii.gz").get_fdata()
    other, _ = dataset
    ge_other = nib.load(other / "images" / "sim-ge-000_ge_standard.nii.gz").get_fdata()
    assert _body_corr(siemens, ge_same) > 0.7 and _body_corr(siemens, ge_other) < 0.4  # measured 0.84 / 0.06
    assert not np.array_equal(siemens, ge_same)


def test_cli_simulate_traveling(tmp_path):
    out = tmp_path / "cli_travel"
    assert main(["simulate", "--out", str(out), "--subjects", "1", "--size", "32", "--slices", "1", "--traveling",
                 "--noprogress"]) == 0
    doc = json.loads((out / "datalist.json").read_text())
    assert {(e["subject"], e["vendor"]) for e in doc["data"]} == {("sim-travel-000", "siemens"), ("sim-travel-000", "ge")}
    assert "scanned at every site" in doc["description"]
