"""``ctharmonize radiomics``: pyradiomics' own values, both CCC forms against hand computations, the paper's
[0, 1] PSNR/SSIM/uncentered NCC, bad input (one-line error, nothing written) and a simulated end to end run."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from ctharmonize.cli import main
from ctharmonize.evaluation.radiomics_ccc import conventional_ccc, normalize_features, paper_ccc
from ctharmonize.evaluation.radiomics_image_quality import image_quality, ncc_uncentered, to_unit
from ctharmonize.io import Volume, write_volume
from ctharmonize.metrics import ncc

radiomics = pytest.importorskip("radiomics", reason="the radiomics extra (pyradiomics-bhklab) is not installed")

from ctharmonize.evaluation.radiomics_features import (  # noqa: E402
    FEATURE_CLASSES,
    SOFT_TISSUE_HU,
    feature_names,
    soft_tissue_roi,
)

SIX = ("firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm")
SPACING = (0.75, 0.625, 2.5)  # x, y, z mm (exact in the float32 NIfTI header)


def lin(x, y) -> float:
    """Lin's CCC written out: 2 cov / (var x + var y + (mean x - mean y)²), population moments."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return 2 * np.mean((x - x.mean()) * (y - y.mean())) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["radiomics", *(os.fspath(a) for a in args), "--noprogress"])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str, *texts: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    for t in texts:
        assert t in lines[0], (t, lines[0])
    return lines[0]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- a hand-made two-kernel datalist (64x64x3)


def _textured(seed: int, sharp: bool) -> np.ndarray:
    """(Z, Y, X) HU: air, a body of fat and muscle with texture, a bone block; the 'sharp' kernel adds noise."""
    rng = np.random.default_rng(seed)
    hu = np.full((3, 64, 64), -1000.0)
    hu[:, 8:56, 8:56] = -90.0
    hu[:, 16:48, 16:48] = 45.0 + 35.0 * np.sin(np.arange(32) / 2.0)[None, None, :] + rng.normal(0, 20, (3, 32, 32))
    hu[:, 24:30, 40:46] = 700.0
    if sharp:
        hu = hu + rng.normal(0, 40, hu.shape)
    return np.round(hu).astype(np.float32)  # integers: exact in float32 NIfTI


def _labels() -> np.ndarray:
    lab = np.zeros((3, 64, 64), np.uint8)
    lab[:, 8:56, 8:56] = 6  # subcutaneous fat
    lab[:, 16:48, 16:48] = 5  # muscle
    lab[:, 24:30, 40:46] = 8  # bone: not soft tissue
    return lab


def _write(array: np.ndarray, path: Path) -> str:
    write_volume(Volume(array, spacing=SPACING), path)
    return path.name


def _hand_datalist(folder: Path, subjects: int = 3, labels: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = []
    for s in range(subjects):
        lab = _write(_labels(), folder / f"s{s}_labels.nii.gz") if labels else None
        for kernel, sharp in (("ge_bone", True), ("ge_standard", False)):
            entry = {"image": _write(_textured(10 + s, sharp), folder / f"s{s}_{kernel}.nii.gz"), "kernel": kernel,
                     "subject": f"s{s}", "vendor": "ge"}
            if lab:
                entry["labels"] = lab
            data.append(entry)
    path = folder / "datalist.json"
    path.write_text(json.dumps({"data": data}))
    return path


# ---------------------------------------------------------------- features = pyradiomics' own


def test_feature_set_is_pyradiomics_default_six_classes_93():
    names = feature_names()
    assert {c: len(v) for c, v in names.items()} == FEATURE_CLASSES == {
        "firstorder": 18, "glcm": 24, "glrlm": 16, "glszm": 16, "ngtdm": 5, "gldm": 14}
    assert sum(len(v) for v in names.values()) == 93
    classes = radiomics.getFeatureClasses()
    for c in SIX:  # exactly the non-deprecated features
        assert set(names[c]) == {n for n, dep in classes[c].getFeatureNames().items() if not dep}
    assert "StandardDeviation" not in names["firstorder"] and "SumVariance" not in names["glcm"]


def test_features_csv_equals_pyradiomics_run_directly(tmp_path):
    import SimpleITK as sitk
    from radiomics import featureextractor

    from ctharmonize.evaluation.radiomics_reproducibility import run_radiomics

    dl = _hand_datalist(tmp_path / "data", subjects=2)
    run_radiomics(dl, tmp_path / "out", pairs="ge_bone:ge_standard", progress=False)
    rows = read_csv(tmp_path / "out" / "features.csv")
    assert len(rows) == 4 and {r["role"] for r in rows} == {"source", "reference"}

    extractor = featureextractor.RadiomicsFeatureExtractor(force2D=True, binWidth=25)  # pyradiomics defaults otherwise
    extractor.disableAllFeatures()
    for c in SIX:
        extractor.enableFeatureClassByName(c)  # pyradiomics' default set of the class
    mask = np.isin(_labels(), [5, 6, 7, 9]).astype(np.uint8)
    for row in rows:
        s = int(row["subject"][1:])
        hu = _textured(10 + s, row["kernel"] == "ge_bone")
        image, roi = sitk.GetImageFromArray(hu), sitk.GetImageFromArray(mask)
        image.SetSpacing(SPACING)
        roi.SetSpacing(SPACING)
        expected = {k: float(v) for k, v in extractor.execute(image, roi).items() if not k.startswith("diagnostics")}
        got = {k: float(v) for k, v in row.items() if k.startswith("original_")}
        assert len(expected) == 93 and got.keys() == expected.keys()
        for k, v in expected.items():
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
        assert row["roi"] == "labels" and int(row["roi_voxels"]) == int(mask.sum())


def test_threshold_roi_is_soft_tissue_hu_inside_the_body():
    hu = _textured(3, sharp=False)
    roi = soft_tissue_roi(Volume(hu, spacing=SPACING))
    inside = np.zeros(hu.shape, bool)
    inside[:, 8:56, 8:56] = True
    expected = inside & (hu >= SOFT_TISSUE_HU[0]) & (hu <= SOFT_TISSUE_HU[1])
    assert not (roi & ~expected).any()  # only soft-tissue HU inside the body
    core = np.zeros(hu.shape, bool)
    core[:, 10:54, 10:54] = True  # all of it away from the body's edge (the body mask rounds its corners)
    np.testing.assert_array_equal(roi[core], expected[core])
    assert not roi[:, 24:30, 40:46].any() and not roi[:, :8].any()  # no bone, no air
    labelled = soft_tissue_roi(Volume(hu, spacing=SPACING), _labels())
    np.testing.assert_array_equal(labelled, np.isin(_labels(), [5, 6]))


# ---------------------------------------------------------------- the two CCC forms by hand


@pytest.fixture()
def features():
    rng = np.random.default_rng(5)
    classes = ["a"] * 4 + ["b"] * 3
    scale = np.array([1.0, 1e3, 1e-2, 50.0, 1.0, 1e6, 3.0])
    source = rng.normal(size=(6, 7)) * scale + scale
    reference = source + rng.normal(scale=0.4, size=(6, 7)) * scale + 0.2 * scale
    return source, reference, classes


def test_paper_form_by_hand(features):
    source, reference, classes = features
    both = np.vstack([source, reference])  # the comparison's 2N images
    zs = (source - both.mean(0)) / both.std(0)
    zr = (reference - both.mean(0)) / both.std(0)
    got = paper_ccc(source, reference, classes)
    for group, cols in (("a", [0, 1, 2, 3]), ("b", [4, 5, 6]), ("all", list(range(7)))):
        expected = [lin(zs[i, cols], zr[i, cols]) for i in range(6)]
        np.testing.assert_allclose(got[group], expected, rtol=1e-10)
    lo, hi = both.min(0), both.max(0)
    mm = paper_ccc(source, reference, classes, normalization="minmax")
    expected = [lin(((source[i] - lo) / (hi - lo))[:4], ((reference[i] - lo) / (hi - lo))[:4]) for i in range(6)]
    np.testing.assert_allclose(mm["a"], expected, rtol=1e-10)
    # identical images -> 1 for every pair; a constant feature becomes 0 (no NaN)
    same = paper_ccc(source, source, classes)
    assert all(np.all(v == 1.0) for v in same.values())
    flat = source.copy()
    flat[:, 0] = 7.0
    zs_flat, _ = normalize_features(flat, flat + 0.0)
    assert np.all(zs_flat[:, 0] == 0.0)


def test_conventional_form_by_hand(features):
    source, reference, classes = features
    got = conventional_ccc(source, reference, classes)
    per_feature = [lin(source[:, j], reference[:, j]) for j in range(7)]
    np.testing.assert_allclose(got["a"], per_feature[:4], rtol=1e-10)
    np.testing.assert_allclose(got["b"], per_feature[4:], rtol=1e-10)
    np.testing.assert_allclose(got["all"], per_feature, rtol=1e-10)
    shifted = source.copy()
    shifted[:, 4] += 2.0 * source[:, 4].std()  # y = x + shift: lower than 1, exactly 2v / (2v + shift²)
    res = conventional_ccc(source, shifted, classes)
    assert np.all(res["a"] == 1.0)
    v = source[:, 4].var()
    assert res["b"][0] == pytest.approx(2 * v / (2 * v + 4 * v)) and res["b"][0] < 1.0


# ---------------------------------------------------------------- Table 3 measures on [0, 1]


def test_unit_window_and_uncentered_ncc():
    np.testing.assert_allclose(to_unit(np.array([-1100.0, -1000.0, -50.0, 900.0, 2000.0])), [0, 0, 0.5, 1, 1])
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    assert ncc_uncentered(x, y) == pytest.approx(12.0 / math.sqrt(14.0 * 12.0))
    assert math.isnan(ncc(x, y, hu_window=None))  # the zero-mean NCC is undefined here: uncentered differs


def test_psnr_ssim_ncc_on_unit_images():
    rng = np.random.default_rng(1)
    ref = rng.uniform(-1000, 900, (2, 24, 24))
    img = ref + rng.normal(0, 60, ref.shape)
    q = image_quality(img, ref)
    x, y = (np.clip(img, -1000, 900) + 1000) / 1900, (ref + 1000) / 1900
    assert q["psnr"] == pytest.approx(10 * math.log10(1.0 / np.mean((x - y) ** 2)))
    assert q["ssim"] == pytest.approx(np.mean([structural_similarity(y[k], x[k], data_range=1.0) for k in range(2)]))
    assert q["ncc"] == pytest.approx(np.sum(x * y) / math.sqrt(np.sum(x * x) * np.sum(y * y)))
    assert image_quality(ref, ref)["psnr"] == math.inf


# ---------------------------------------------------------------- bad input: one line, nothing written


def test_bad_inputs_are_one_line_errors_and_write_nothing(capsys, tmp_path):
    dl = _hand_datalist(tmp_path / "data", subjects=2)
    out = tmp_path / "out"
    cases = [
        (["--pairs", "ge_bone"], ["--pairs expects SRC:REF"]),
        (["--pairs", "ge_bone:siemens_b30f"], [str(dl), "no subject has both a 'ge_bone' and a 'siemens_b30f' scan"]),
        (["--roi", "box"], ["--roi must be one of auto, labels, threshold"]),
    ]
    for extra, texts in cases:
        rc, _, err = run_cli(capsys, dl, out, *extra)
        assert rc == 2
        one_line(err, *texts)
    missing = tmp_path / "missing.json"
    rc, _, err = run_cli(capsys, missing, out)
    one_line(err, str(missing))
    # a harmonized datalist that lacks a subject
    h = tmp_path / "data" / "harmonized.json"
    h.write_text(json.dumps({"data": [{"image": "s0_ge_standard.nii.gz", "kernel": "ge_standard",
                                       "source_kernel": "ge_bone", "subject": "s0"}]}))
    rc, _, err = run_cli(capsys, dl, out, "--harmonized", h)
    one_line(err, str(h), "no harmonized ge_bone->ge_standard image of subject 's1'")
    # an unreadable image, found only when it is read
    broken = tmp_path / "data" / "s1_ge_bone.nii.gz"
    broken.write_bytes(b"not a nifti file")
    rc, _, err = run_cli(capsys, dl, out)
    assert rc == 2
    one_line(err, str(broken))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no output, no temporary left


def test_existing_output_is_refused_without_overwrite(capsys, tmp_path):
    dl = _hand_datalist(tmp_path / "data", subjects=2)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, dl, out)
    assert rc == 0, err
    assert "1 kernel pairs, 2 subject pairs, 93 features" in stdout
    before = (out / "features.csv").read_bytes()
    rc, _, err = run_cli(capsys, dl, out, "--pairs", "ge_bone:siemens_b30f")
    assert rc == 2
    one_line(err, str(out), "output already exists")  # checked first, before the datalist is read
    rc, _, err = run_cli(capsys, dl, dl, "--overwrite")
    one_line(err, "output is the input")
    rc, _, err = run_cli(capsys, dl, out, "--overwrite", "--roi", "threshold")
    assert rc == 0, err
    assert (out / "features.csv").read_bytes() != before  # replaced (threshold ROI this time)
    assert {r["roi"] for r in read_csv(out / "features.csv")} == {"threshold"}
    other = tmp_path / "not_ours"
    other.mkdir()
    rc, _, err = run_cli(capsys, dl, other, "--overwrite")
    one_line(err, str(other), "only replaces earlier ctharmonize outputs")


# ---------------------------------------------------------------- end to end on the simulator's data


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    from ctharmonize.datasets import ensure_simulated_dataset

    return ensure_simulated_dataset(tmp_path_factory.mktemp("radiomics_sim") / "sim", subjects=2, size=48, slices=4,
                                    seed=0, progress=False)


def test_simulated_end_to_end_with_harmonized_images(capsys, simulated, tmp_path):
    doc = json.loads(simulated.read_text())
    by = {(e["subject"], e["kernel"]): e for e in doc["data"]}
    # a perfect "harmonizer" for GE (the reference scan itself) and a poor one for Siemens (the source itself)
    harmonized = [{"image": e["image"], "kernel": "ge_standard", "source_kernel": "ge_bone", "subject": s}
                  for (s, k), e in by.items() if k == "ge_standard"]
    harmonized += [{"image": e["image"], "kernel": "siemens_b30f", "source_kernel": "siemens_b50f", "subject": s}
                   for (s, k), e in by.items() if k == "siemens_b50f"]
    h = simulated.parent / "harmonized.json"
    h.write_text(json.dumps({"data": harmonized}))
    out = tmp_path / "rad"
    rc, _, err = run_cli(capsys, simulated, out, "--pairs", "ge_bone:ge_standard,siemens_b50f:siemens_b30f",
                         "--harmonized", h)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["ccc.png", "features.csv", "radiomics.json", "table2.csv",
                                                     "table2.md", "table3.csv", "table3.md"]
    assert (out / "ccc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((out / "radiomics.json").read_text())
    assert result["settings"]["feature_classes"] == FEATURE_CLASSES and result["settings"]["n_features"] == 93
    assert result["settings"]["extractor"]["force2D"] is True and result["settings"]["extractor"]["binWidth"] == 25
    rows = read_csv(out / "features.csv")
    assert len(rows) == 2 * 2 * 3 and {r["roi"] for r in rows} == {"labels"}  # 2 pairs x 2 subjects x 3 images
    ge, siemens = result["pairs"]
    assert ge["name"] == "ge_bone->ge_standard" and ge["n_pairs"] == 2
    for group in ("firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "all"):
        assert ge["comparisons"]["harmonized"]["paper"][group]["mean"] == pytest.approx(1.0)
        assert ge["comparisons"]["input"]["paper"][group]["mean"] < 0.99
        assert siemens["comparisons"]["harmonized"]["paper"][group] == siemens["comparisons"]["input"]["paper"][group]
    q = ge["comparisons"]["harmonized"]["image_quality"]
    assert q["ssim"]["mean"] == pytest.approx(1.0) and q["ncc"]["mean"] == pytest.approx(1.0)
    assert ge["comparisons"]["input"]["image_quality"]["ncc"]["mean"] < 1.0
    table2 = read_csv(out / "table2.csv")
    assert len(table2) == 2 * 2 * 2 * 7  # pairs x comparisons x forms x (6 classes + all)
    cell = next(r for r in table2 if r["pair"] == "ge_bone->ge_standard" and r["comparison"] == "harmonized"
                and r["form"] == "paper" and r["feature_class"] == "glcm")
    assert float(cell["mean"]) == pytest.approx(1.0)
    md = (out / "table2.md").read_text()
    assert "| Harmonized | 1.00 ± 0.00 |" in md and "First order | GLCM | GLDM | GLRLM | GLSZM | NGTDM | All |" in md
    assert "| ge_bone → ge_standard | Harmonized | 2 | inf |" in (out / "table3.md").read_text()

    # the same inputs as a harmonize-cohort manifest give the same tables
    manifest_dir = simulated.parent / "cohort"
    manifest_dir.mkdir(exist_ok=True)
    with open(manifest_dir / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "subject", "output", "source_kernel", "target_kernel"])
        for i, e in enumerate(harmonized):
            w.writerow([i, e["subject"], os.path.join("..", e["image"]), e["source_kernel"], e["kernel"]])
    rc, _, err = run_cli(capsys, simulated, tmp_path / "rad2", "--pairs", "ge_bone:ge_standard,siemens_b50f:siemens_b30f",
                         "--harmonized", manifest_dir)
    assert rc == 0, err
    assert (tmp_path / "rad2" / "table2.csv").read_text() == (out / "table2.csv").read_text()

    # several named methods: one row each, in the given order, each its own method's values
    swap = [{"image": e["image"], "kernel": "ge_standard", "source_kernel": "ge_bone", "subject": s}
            for (s, k), e in by.items() if k == "ge_bone"]
    swap += [{"image": e["image"], "kernel": "siemens_b30f", "source_kernel": "siemens_b50f", "subject": s}
             for (s, k), e in by.items() if k == "siemens_b30f"]
    h2 = simulated.parent / "swap.json"
    h2.write_text(json.dumps({"data": swap}))
    rc, _, err = run_cli(capsys, simulated, tmp_path / "rad3", "--pairs", "ge_bone:ge_standard,siemens_b50f:siemens_b30f",
                         "--harmonized", f"Oracle={h},Swap={h2}")
    assert rc == 0, err
    named = json.loads((tmp_path / "rad3" / "radiomics.json").read_text())
    assert named["harmonized"] == {"Oracle": os.fspath(h), "Swap": os.fspath(h2)}
    ge3, siemens3 = named["pairs"]
    assert list(ge3["comparisons"]) == ["input", "Oracle", "Swap"]
    for group in ("glcm", "glrlm", "all"):
        assert ge3["comparisons"]["Oracle"]["paper"][group] == ge["comparisons"]["harmonized"]["paper"][group]
        assert ge3["comparisons"]["Swap"]["paper"][group] == ge["comparisons"]["input"]["paper"][group]
        assert siemens3["comparisons"]["Swap"]["paper"][group]["mean"] == pytest.approx(1.0)
        assert siemens3["comparisons"]["Oracle"]["conventional"][group] == siemens["comparisons"]["input"]["conventional"][group]
    md3 = (tmp_path / "rad3" / "table2.md").read_text()
    assert "| Oracle | 1.00 ± 0.00 |" in md3 and "| Swap |" in md3 and "| Harmonized |" not in md3
    assert "| siemens_b50f → siemens_b30f | Swap | 2 | inf |" in (tmp_path / "rad3" / "table3.md").read_text()
    assert len(read_csv(tmp_path / "rad3" / "features.csv")) == 2 * 2 * 4
    for bad, text in ((f"input={h}", "method name 'input' is reserved"), (f"A={h},A={h2}", "given twice"),
                      (f"A={h},B=", "NAME=PATH")):
        rc, _, err = run_cli(capsys, simulated, tmp_path / "rad4", "--harmonized", bad)
        assert rc == 2 and text in one_line(err) and not (tmp_path / "rad4").exists()
    partial = simulated.parent / "partial.json"
    partial.write_text(json.dumps({"data": swap[:1]}))
    rc, _, err = run_cli(capsys, simulated, tmp_path / "rad4", "--pairs", "ge_bone:ge_standard",
                         "--harmonized", f"Oracle={h},Partial={partial}")
    assert rc == 2 and "partial.json" in one_line(err) and "no harmonized ge_bone->ge_standard image" in err


def test_tools_workflow_matches_the_command(simulated, tmp_path):
    from monai.bundle import ConfigParser

    tools = Path(__file__).resolve().parents[2] / "tools"
    parser = ConfigParser()
    parser.read_config(tools / "radiomics.json")
    parser.read_meta(tools / "metadata.json")
    parser.update({"datalist": os.fspath(simulated), "output_dir": os.fspath(tmp_path / "bundle"),
                   "pairs": "ge_bone:ge_standard", "progress": False})
    assert callable(parser.get_parsed_content("radiomics"))
    parser.get_parsed_content("run")
    rc = main(["radiomics", os.fspath(simulated), os.fspath(tmp_path / "cli"), "--pairs", "ge_bone:ge_standard",
               "--noprogress"])
    assert rc == 0
    for name in ("table2.csv", "table3.csv", "features.csv"):
        assert (tmp_path / "bundle" / name).read_text() == (tmp_path / "cli" / name).read_text(), name
    shutil.rmtree(tmp_path / "bundle")


def test_harmonized_datalist_forms_and_pair_plan(tmp_path):
    from ctharmonize.errors import ConfigError, DatalistError
    from ctharmonize.evaluation.radiomics_pairs import load_harmonized, parse_pairs, plan_pairs

    dl = _hand_datalist(tmp_path / "data", subjects=2, labels=False)
    h = tmp_path / "data" / "h.json"
    h.write_text(json.dumps({"data": [
        {"image": "s0_ge_bone.nii.gz", "kernel": "ge_bone", "subject": "s0", "harmonized": "s0_ge_standard.nii.gz",
         "target": "ge_standard"},
        {"image": "s1_ge_standard.nii.gz", "kernel": "ge_standard", "source_kernel": "ge_bone", "subject": "s1"}]}))
    found = load_harmonized(h)
    assert found == {("s0", "ge_bone", "ge_standard"): os.fspath(tmp_path / "data" / "s0_ge_standard.nii.gz"),
                     ("s1", "ge_bone", "ge_standard"): os.fspath(tmp_path / "data" / "s1_ge_standard.nii.gz")}
    entries = json.loads(dl.read_text())["data"]
    plan = plan_pairs(entries, parse_pairs("ge_bone:ge_standard"), dl, {"harmonized": found}, {"harmonized": h})
    (scans,) = plan.values()
    assert [(s.subject, s.source, s.reference, s.labels) for s in scans] == [
        ("s0", "s0_ge_bone.nii.gz", "s0_ge_standard.nii.gz", None), ("s1", "s1_ge_bone.nii.gz", "s1_ge_standard.nii.gz", None)]
    assert [s.harmonized for s in scans] == [(("harmonized", found[("s0", "ge_bone", "ge_standard")]),),
                                             (("harmonized", found[("s1", "ge_bone", "ge_standard")]),)]
    with pytest.raises(DatalistError, match="no 'labels' map"):
        plan_pairs(entries, [("ge_bone", "ge_standard")], dl, roi="labels")
    assert parse_pairs(["a:b", ("c", "d"), "a:b"]) == [("a", "b"), ("c", "d")]
    with pytest.raises(ConfigError, match="with itself"):
        parse_pairs("a:a")
