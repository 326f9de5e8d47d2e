"""End to end: ``ctharmonize evaluate`` / ``emphysema`` on a tiny simulated cohort.

Values in per_scan.csv / summary.json are recomputed independently here with numpy from the
files (image, datalist lung mask, harmonized image).
"""

import csv
import json
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ctharmonize.cli import main
from ctharmonize.io import read_volume, write_volume


def _laa(hu, lung):
    inside = lung > 0
    return 100.0 * np.count_nonzero(hu[inside] < -950) / np.count_nonzero(inside)


def _dice(a, b):
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    from ctharmonize.simulation import generate_dataset

    datalist = generate_dataset(root / "sim", subjects=1, size=64, slices=8, seed=0, progress=False)
    doc = json.loads(datalist.read_text())
    # a stand-in "harmonizer": Gaussian smoothing of the sharp kernels, to B30f
    for e in doc["data"]:
        if e["kernel"] in ("siemens_b50f", "ge_bone"):
            vol = read_volume(datalist.parent / e["image"])
            out = f"harmonized/{e['subject']}_{e['kernel']}_to_b30f.nii.gz"
            write_volume(vol.with_array(gaussian_filter(vol.array, 1.0).astype(np.float32)), datalist.parent / out)
            e["harmonized"] = out
            e["target"] = "siemens_b30f"
    with_h = datalist.parent / "datalist_harmonized.json"
    with_h.write_text(json.dumps(doc))
    return datalist, with_h


def test_cli_evaluate_writes_report_and_values_match_recomputation(dataset, tmp_path, capsys):
    _, datalist = dataset
    out = tmp_path / "report"
    assert main(["evaluate", "--datalist", str(datalist), "--out", str(out), "--n_resamples", "50",
                 "--progress", "False", "--html", "True"]) == 0
    for name in ("per_scan.csv", "summary.json", "report.md", "report.html", "bland_altman_laa.png", "laa_boxplot.png",
                 "dice_muscle_sat.png", "example_panel.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "per_scan.csv").open()))
    doc = json.loads(datalist.read_text())
    assert len(rows) == len(doc["data"])
    row = next(r for r in rows if r["kernel"] == "siemens_b50f")
    entry = next(e for e in doc["data"] if e["kernel"] == "siemens_b50f")
    ref_entry = next(e for e in doc["data"] if e["kernel"] == "siemens_b30f" and e["subject"] == entry["subject"])
    base = datalist.parent
    image = read_volume(base / entry["image"])
    harmonized = read_volume(base / entry["harmonized"])
    reference = read_volume(base / ref_entry["image"])
    lung = np.rint(read_volume(base / entry["lung"]).array).astype(np.uint8)
    assert row["mask_source"] == "datalist"
    assert float(row["laa_pct"]) == pytest.approx(_laa(image.array, lung), abs=1e-6)
    assert float(row["after_laa_pct"]) == pytest.approx(_laa(harmonized.array, lung), abs=1e-6)
    assert float(row["ref_laa_pct"]) == pytest.approx(_laa(reference.array, lung), abs=1e-6)
    assert float(row["ref_mean_hu"]) == pytest.approx(float(reference.array[lung > 0].astype(float).mean()), rel=1e-5)
    assert float(row["ref_perc15_hu"]) == pytest.approx(np.percentile(reference.array[lung > 0], 15), abs=0.5)
    # summary: MLD difference after harmonization, averaged over the paired B50f rows by hand
    pairs = [r for r in rows if r["kernel"] == "siemens_b50f" and r["harmonized"]]
    diff = [float(r["after_mean_hu"]) - float(r["ref_mean_hu"]) for r in pairs]
    mld = json.loads((out / "summary.json").read_text())["paired"]["siemens_b50f->siemens_b30f"]["lung_measures"]["mean_hu"]
    assert mld["after"]["mean_difference"] == pytest.approx(np.mean(diff), rel=1e-6)
    assert mld["after"]["rmse"] == pytest.approx(np.sqrt(np.mean(np.square(diff))), rel=1e-6)
    assert float(row["laa_pct_right"]) == pytest.approx(_laa(image.array, lung * (lung == 1)), abs=1e-6)
    voxel_ml = np.prod(image.spacing) / 1000
    assert float(row["volume_ml"]) == pytest.approx(np.count_nonzero(lung) * voxel_ml, rel=1e-6)
    # PSNR of the original sharp image against its paired B30f, HU clipped to [-1024, 3072], range 4096
    x = np.clip(image.array.astype(float), -1024, 3072)
    y = np.clip(reference.array.astype(float), -1024, 3072)
    assert float(row["psnr_before"]) == pytest.approx(10 * math.log10(4096**2 / np.mean((x - y) ** 2)), rel=1e-6)
    # Dice of the body-composition labels (segmentation engineer's labeller, Dice by hand)
    from ctharmonize.segmentation import body_composition

    before = body_composition(image, backend="threshold", lung=lung)
    after = body_composition(harmonized, backend="threshold", lung=lung)
    assert float(row["dice_muscle"]) == pytest.approx(_dice(before == 5, after == 5), abs=1e-9)
    assert float(row["dice_sat"]) == pytest.approx(_dice(before == 6, after == 6), abs=1e-9)

    summary = json.loads((out / "summary.json").read_text())
    paired = summary["paired"]["siemens_b50f->siemens_b30f"]
    diff = _laa(image.array, lung) - _laa(reference.array, lung)
    assert paired["before"]["rmse"] == pytest.approx(abs(diff), abs=1e-6)  # one subject: the CI collapses
    assert paired["before"]["ci_low"] == pytest.approx(abs(diff), abs=1e-6)
    assert paired["after"]["mean_difference"] == pytest.approx(_laa(harmonized.array, lung) - _laa(reference.array, lung),
                                                               abs=1e-6)
    assert summary["unpaired"]["reference"]["median"] == pytest.approx(_laa(reference.array, lung), abs=1e-6)
    assert set(summary["unpaired"]["kernels"]) == {"siemens_b50f", "ge_bone", "ge_standard"}
    assert summary["unpaired"]["kernels"]["ge_standard"]["after"] is None
    report = (out / "report.md").read_text()
    assert "Table 1 form" in report and "siemens_b50f vs siemens_b30f" in report
    assert f"{abs(diff):.2f}% [{abs(diff):.2f}%, {abs(diff):.2f}%]" in report

    capsys.readouterr()
    assert main(["evaluate", "--datalist", str(datalist), "--out", str(out), "--progress", "False"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and str(out) in err


def test_cli_evaluate_before_only_demo(dataset, tmp_path):
    """The demo job: a freshly simulated dataset without harmonized images still gives a report."""
    datalist, _ = dataset
    out = tmp_path / "demo_report"
    assert main(["evaluate", "--datalist", str(datalist), "--out", str(out), "--n_resamples", "50",
                 "--progress", "False"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_harmonized"] == 0 and summary["dice"] == {}
    assert summary["paired"]["siemens_b50f->siemens_b30f"]["after"] is None
    assert summary["paired"]["ge_bone->ge_standard"]["before"]["rmse"] >= 0
    assert not (out / "dice_muscle_sat.png").exists()
    assert (out / "example_panel.png").is_file()
    assert "No harmonized images were given" in (out / "report.md").read_text()


def test_cli_emphysema_json_matches_numpy(dataset, tmp_path, capsys):
    datalist, _ = dataset
    doc = json.loads(datalist.read_text())
    entry = next(e for e in doc["data"] if e["kernel"] == "ge_bone")
    image = datalist.parent / entry["image"]
    lung_path = datalist.parent / entry["lung"]
    out = tmp_path / "m.json"
    assert main(["emphysema", "--input", str(image), "--lung", str(lung_path), "--out", str(out)]) == 0
    measures = json.loads(out.read_text())["measures"]
    hu = read_volume(image).array
    lung = np.rint(read_volume(lung_path).array).astype(np.uint8)
    assert measures["both"]["laa_pct"] == pytest.approx(_laa(hu, lung), abs=1e-6)
    assert measures["left"]["laa_pct"] == pytest.approx(_laa(hu, (lung == 2).astype(np.uint8)), abs=1e-6)
    assert main(["emphysema", "--input", str(tmp_path / "missing.nii.gz")]) == 2
    assert "missing.nii.gz" in capsys.readouterr().err


def test_mask_source_reference_and_datalist_required(dataset):
    from ctharmonize.data import load_datalist
    from ctharmonize.errors import ConfigError
    from ctharmonize.evaluation import build_cohort, evaluate_cohort
    from ctharmonize.segmentation import segment_lungs

    datalist, _ = dataset
    entries = load_datalist(datalist)
    result = evaluate_cohort(build_cohort(entries), mask_source="reference", body_composition=False,
                             similarity=False, progress=False)
    row = next(r for r in result.rows if r["kernel"] == "siemens_b50f")
    assert row["mask_source"] == "segmented paired reference"
    ref_entry = next(e for e in entries if e["kernel"] == "siemens_b30f" and e["subject"] == row["subject"])
    lung = segment_lungs(read_volume(ref_entry["image"]), backend="threshold")
    assert row["laa_pct"] == pytest.approx(_laa(read_volume(row["image"]).array, lung), abs=1e-6)
    no_lung = [{k: v for k, v in e.items() if k != "lung"} for e in entries]
    with pytest.raises(ConfigError, match="no 'lung' mask"):
        evaluate_cohort(build_cohort(no_lung), mask_source="datalist", progress=False)
