"""``ctharmonize benchmark`` on a tiny simulated test set with the shipped baseline and a tiny CycleGAN bundle.

Leaderboard values are recomputed here independently (numpy / scipy / scikit-image on the files, the
baseline's harmonizer called by hand), not with the benchmark's own helpers.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ctharmonize.cli import main
from ctharmonize.io import read_volume

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
from tiny_bundle_config import write_cyclegan_bundle  # noqa: E402

BASELINE = Path(__file__).resolve().parents[2] / "bundles" / "kernel_normalization_ct_harmonization"
TINY_DOMAINS = ["siemens_b50f", "siemens_b30f"]  # one pair: only the Siemens paired path is supported
PAIRED = {"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard"}
TRUTH_PATHS = [f"{k}->ground_truth" for k in ("siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard")]
N_PATHS = 4 + len(TRUTH_PATHS)
WINDOW = (-1024.0, 3072.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from ctharmonize.simulation import generate_dataset

    root = tmp_path_factory.mktemp("benchmark")
    datalist = generate_dataset(root / "sim", subjects=2, size=96, slices=6, seed=7, split="test", progress=False)
    tiny = write_cyclegan_bundle(root / "tiny_cyclegan", TINY_DOMAINS, "siemens_b30f")
    out = root / "board"
    code = main(["benchmark", "--bundles", str(tiny), "--datalist", str(datalist), "--out", str(out),
                 "--trust_bundle", "--device", "cpu", "--n_resamples", "200", "--distribution_slices", "4",
                 "--noprogress"])
    assert code == 0
    rows = list(csv.DictReader((out / "leaderboard.csv").open(encoding="utf-8")))
    return {"datalist": datalist, "tiny": tiny, "out": out, "rows": rows,
            "entries": json.loads(datalist.read_text())["data"], "base": datalist.parent}


def _row(rows, role, path):
    return next(r for r in rows if r["role"] == role and r["path"] == path)


def _laa(hu, lung):
    inside = lung > 0
    return 100.0 * np.count_nonzero(hu[inside] < -950) / np.count_nonzero(inside)


def _pairs(setup, source):
    """(sharp entry, soft entry) of every subject with ``source`` and its paired soft kernel."""
    entries = setup["entries"]
    out = []
    for e in entries:
        if e["kernel"] == source:
            out.append((e, next(r for r in entries if r["subject"] == e["subject"] and r["kernel"] == PAIRED[source])))
    return out


def _read(setup, rel):
    return read_volume(setup["base"] / rel)


def _lung(setup, entry):
    return np.rint(_read(setup, entry["lung"]).array).astype(np.uint8)


def test_writes_every_output_and_one_row_per_method_and_path(setup):
    out = setup["out"]
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.json", "bars.png", "panel.png"):
        assert (out / name).is_file(), name
    assert not (out / "harmonized.tmp").exists()  # scratch volumes removed
    rows = setup["rows"]
    assert [r["role"] for r in rows[:3]] == ["none", "baseline", "bundle"]
    assert len(rows) == 3 * N_PATHS
    tiny = [r for r in rows if r["role"] == "bundle"]
    assert {r["path"]: r["status"] for r in tiny} == {
        "siemens_b50f->siemens_b30f": "ok", "ge_bone->ge_standard": "not supported",
        "ge_bone->siemens_b30f": "not supported", "ge_standard->siemens_b30f": "not supported",
        **dict.fromkeys(TRUTH_PATHS, "not supported")}  # no "ground_truth" domain
    assert all(r["status"] == "ok" for r in rows if r["role"] == "none")
    assert {r["path"]: r["status"] for r in rows if r["role"] == "baseline"} == {
        **{r["path"]: "ok" for r in rows if r["kind"] != "truth"}, **dict.fromkeys(TRUTH_PATHS, "not supported")}
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "ctharmonize benchmark --bundles " + str(setup["tiny"]) in md
    assert "ctharmonize-simulated" in md and "## Beats the baseline?" in md and "not supported" in md
    doc = json.loads((out / "leaderboard.json").read_text())
    assert doc["split"] == "test" and len(doc["rows"]) == 3 * N_PATHS and doc["datalist"]["name"] == "ctharmonize-simulated"
    assert math.isfinite(float(_row(rows, "bundle", "siemens_b50f->siemens_b30f")["slices_per_s"]))


def test_none_row_matches_numpy_on_the_files(setup):
    rows = setup["rows"]
    for source, target in PAIRED.items():
        row = _row(rows, "none", f"{source}->{target}")
        sharp_laa, soft_laa, p15, mld, ssims, psnrs, gt_laa, ratios = [], [], [], [], [], [], [], []
        for sharp_e, soft_e in _pairs(setup, source):
            sharp, soft = _read(setup, sharp_e["image"]).array, _read(setup, soft_e["image"]).array
            truth_vol = _read(setup, sharp_e["ground_truth"])
            truth = truth_vol.array
            lung = _lung(setup, sharp_e)
            sharp_laa.append(_laa(sharp, lung))
            soft_laa.append(_laa(soft, lung))
            gt_laa.append(_laa(truth, lung))
            p15.append(np.percentile(sharp[lung > 0], 15) - np.percentile(soft[lung > 0], 15))
            mld.append(sharp[lung > 0].astype(float).mean() - soft[lung > 0].astype(float).mean())
            a, b = np.clip(sharp.astype(float), *WINDOW), np.clip(soft.astype(float), *WINDOW)
            ssims.append(np.mean([structural_similarity(b[k], a[k], data_range=4096.0) for k in range(a.shape[0])]))
            psnrs.append(peak_signal_noise_ratio(b, a, data_range=4096.0))
            labels = np.rint(_read(setup, sharp_e["labels"]).array)
            px = max(2, math.ceil(4.0 / min(truth_vol.spacing[:2])))  # erosion: max(2 px, 4 mm)
            muscle = ndimage.minimum_filter((labels == 5).astype(np.uint8), size=(1, 2 * px + 1, 2 * px + 1),
                                            mode="constant") > 0
            ratios.append(np.std((sharp - truth)[muscle]) / np.std((soft - truth)[muscle]))
        rmse = math.sqrt(np.mean((np.array(sharp_laa) - np.array(soft_laa)) ** 2))
        assert float(row["laa950_rmse_pp"]) == pytest.approx(rmse, rel=1e-9)
        assert float(row["laa950_rmse_ci_low"]) <= rmse * 1.0001 + 1e-9 and float(row["laa950_rmse_ci_high"]) >= 0
        assert float(row["laa950_gt_rmse_pp"]) == pytest.approx(
            math.sqrt(np.mean((np.array(sharp_laa) - np.array(gt_laa)) ** 2)), rel=1e-9)
        assert float(row["perc15_diff_hu"]) == pytest.approx(np.mean(p15), abs=0.05)
        assert float(row["mld_diff_hu"]) == pytest.approx(np.mean(mld), rel=1e-5)
        assert float(row["ssim_soft"]) == pytest.approx(np.median(ssims), rel=1e-9)
        assert float(row["psnr_soft_db"]) == pytest.approx(np.median(psnrs), rel=1e-9)
        assert float(row["noise_sd_ratio"]) == pytest.approx(np.median(ratios), rel=1e-6)
        assert float(row["dice_muscle"]) == 1.0 and float(row["dice_sat"]) == 1.0
        assert row["slices_per_s"] == ""  # nothing was run
    # unpaired: median LAA of the GE BONE images vs the Siemens B30f images, Mann-Whitney U
    row = _row(rows, "none", "ge_bone->siemens_b30f")
    entries = setup["entries"]
    bone = [_laa(_read(setup, e["image"]).array, _lung(setup, e)) for e in entries if e["kernel"] == "ge_bone"]
    b30f = [_laa(_read(setup, e["image"]).array, _lung(setup, e)) for e in entries if e["kernel"] == "siemens_b30f"]
    assert float(row["laa950_median_pct"]) == pytest.approx(np.median(bone), rel=1e-9)
    assert float(row["laa950_ref_median_pct"]) == pytest.approx(np.median(b30f), rel=1e-9)
    assert float(row["mwu_p"]) == pytest.approx(stats.mannwhitneyu(bone, b30f).pvalue, rel=1e-9)
    assert row["laa950_rmse_pp"] == "" and row["ssim_soft"] == ""  # paired columns do not apply


def test_baseline_row_matches_its_harmonizer_called_by_hand(setup):
    from ctharmonize.inference import harmonize_volume
    from ctharmonize.inference.bundle_harmonizer import load_bundle_harmonizer

    harmonizer = load_bundle_harmonizer(BASELINE, device="cpu")  # with its trained-spacing policy (resample)
    for source, target in PAIRED.items():
        after, soft_laa = [], []
        for sharp_e, soft_e in _pairs(setup, source):
            volume = _read(setup, sharp_e["image"])
            out = harmonize_volume(volume, harmonizer, source, target).array
            lung = _lung(setup, sharp_e)
            after.append(_laa(out, lung))
            soft_laa.append(_laa(_read(setup, soft_e["image"]).array, lung))
        row = _row(setup["rows"], "baseline", f"{source}->{target}")
        assert float(row["laa950_rmse_pp"]) == pytest.approx(
            math.sqrt(np.mean((np.array(after) - np.array(soft_laa)) ** 2)), rel=1e-9, abs=1e-9)
        assert float(row["slices_per_s"]) > 0
        assert float(row["dice_muscle"]) < 1.0  # a real change of the image


def test_beats_baseline_table_compares_with_the_baseline_row(setup):
    doc = json.loads((setup["out"] / "leaderboard.json").read_text())
    beats = {b["path"]: b for b in doc["beats_baseline"]}
    assert len(beats) == N_PATHS and beats["ge_bone->ge_standard"]["status"] == "not supported"
    assert all(beats[p]["status"] == "not supported" for p in TRUTH_PATHS)  # the bundle's own status first
    siemens = beats["siemens_b50f->siemens_b30f"]
    tiny = _row(setup["rows"], "bundle", "siemens_b50f->siemens_b30f")
    base = _row(setup["rows"], "baseline", "siemens_b50f->siemens_b30f")
    assert siemens["laa950_rmse_pp"] == ("✓" if float(tiny["laa950_rmse_pp"]) < float(base["laa950_rmse_pp"]) else "✗")
    assert siemens["ssim_gt"] == ("✓" if float(tiny["ssim_gt"]) > float(base["ssim_gt"]) else "✗")
    assert "laa950_median_pct" not in siemens  # unpaired columns are not compared on a paired path
    assert siemens["every"] in ("✓", "✗")


def test_beats_baseline_directions():
    from ctharmonize.evaluation.benchmark_table import beats_baseline

    base = {"role": "baseline", "path": "p", "kind": "paired", "status": "ok", "method": "b", "laa950_rmse_pp": 2.0,
            "noise_sd_ratio": 0.5, "perc15_diff_hu": -10.0, "nps_peak_lpcm": 3.0, "nps_peak_ref_lpcm": 2.0,
            "ssim_gt": 0.8, "mwu_p": 0.1}
    cand = {**base, "role": "bundle", "method": "c", "laa950_rmse_pp": 1.0, "noise_sd_ratio": 1.8,
            "perc15_diff_hu": 12.0, "nps_peak_lpcm": 1.5, "ssim_gt": 0.8}
    [b] = beats_baseline([base, cand], lambda r: r["role"] == "bundle")
    assert b["laa950_rmse_pp"] == "✓"  # lower
    assert b["noise_sd_ratio"] == "✓"  # closer to 1 on a log scale: |log 1.8| = 0.59 < |log 0.5| = 0.69
    assert b["perc15_diff_hu"] == "✗"  # |12| > |-10|
    assert b["nps_peak_lpcm"] == "✓"  # |1.5 - 2| < |3 - 2|
    assert b["ssim_gt"] == "=" and b["dice_muscle"] == "–"  # equal; n/a on both sides
    assert "mwu_p" not in b  # an unpaired column is not compared on a paired path
    assert b["every"] == "✗"


def test_refuses_an_existing_out_and_a_bad_bundle_with_one_line(setup, tmp_path, capsys):
    before = sorted(p.name for p in setup["out"].iterdir())
    capsys.readouterr()
    args = ["--datalist", str(setup["datalist"]), "--noprogress"]
    assert main(["benchmark", "--bundles", "", "--out", str(setup["out"]), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--overwrite" in err
    assert sorted(p.name for p in setup["out"].iterdir()) == before
    missing = tmp_path / "no_such_bundle"
    assert main(["benchmark", "--bundles", str(missing), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err
    assert not (tmp_path / "o").exists()


def test_refuses_an_output_holding_the_datalists_scans_even_with_overwrite(setup, tmp_path, capsys):
    """The simulated data folder is an earlier ctharmonize output, so --overwrite alone would allow replacing it;
    it holds the scans the datalist (kept elsewhere) names, so the benchmark refuses it and nothing changes."""
    doc = json.loads(setup["datalist"].read_text())
    for e in doc["data"]:
        for key in ("image", "lung", "labels", "ground_truth"):
            if key in e:
                e[key] = str(setup["base"] / e[key])
    elsewhere = tmp_path / "datalist.json"
    elsewhere.write_text(json.dumps(doc))
    before = sorted(p.relative_to(setup["base"]) for p in setup["base"].rglob("*"))
    capsys.readouterr()
    for cmd in (["benchmark", "--bundles", ""], ["radiomics"]):
        assert main([*cmd, "--datalist", str(elsewhere), "--out", str(setup["base"]), "--overwrite",
                     "--noprogress"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "output would contain the input" in err, err
    assert sorted(p.relative_to(setup["base"]) for p in setup["base"].rglob("*")) == before


def test_refuses_an_output_inside_the_default_baseline_bundle(setup, tmp_path, monkeypatch, capsys):
    import shutil

    from ctharmonize.evaluation import benchmark

    copy = tmp_path / "baseline"  # a copy (same code digest: trusted), so a failure cannot write into the repo
    shutil.copytree(BASELINE, copy, ignore=shutil.ignore_patterns("eval", "sample", "train_output*"))
    monkeypatch.setattr(benchmark, "default_baseline", lambda: copy)
    capsys.readouterr()
    out = copy / "leaderboard"
    assert main(["benchmark", "--bundles", "", "--datalist", str(setup["datalist"]), "--out", str(out),
                 "--noprogress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(copy) in err
    assert not out.exists()


def test_overwrite_replaces_an_earlier_leaderboard(setup, tmp_path):
    out = tmp_path / "none_only"
    args = ["benchmark", "--bundles", "", "--baseline", "", "--datalist", str(setup["datalist"]), "--out", str(out),
            "--n_resamples", "50", "--noprogress"]
    assert main(args) == 0
    rows = list(csv.DictReader((out / "leaderboard.csv").open(encoding="utf-8")))
    assert {r["role"] for r in rows} == {"none"} and len(rows) == N_PATHS
    assert "No baseline" in (out / "leaderboard.md").read_text(encoding="utf-8")
    assert main([*args, "--overwrite"]) == 0
    assert (out / "leaderboard.csv").is_file()


def test_noise_region_erodes_by_two_pixels_or_four_mm():
    from ctharmonize.evaluation.benchmark_measures import erosion_pixels, noise_region

    assert erosion_pixels((3.6, 3.6, 2.0)) == 2 and erosion_pixels((1.3, 1.3)) == 4 and erosion_pixels((0.7, 0.8)) == 6
    labels = np.zeros((2, 40, 40), np.uint8)
    labels[:, 10:30, 5:35] = 5
    labels[1, 0:3, 0:3] = 5  # too small to survive
    region = noise_region(labels, 5, 3)
    assert region[0].sum() == (20 - 6) * (30 - 6) and np.array_equal(region[0], region[1])


def _lin(x, y) -> float:
    """Lin's CCC written out (population moments)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return 2 * np.mean((x - x.mean()) * (y - y.mean())) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def _pyradiomics(volume, roi):
    """The 93 features of pyradiomics run directly (force2D, bin width 25 HU, the six classes) on ``roi``."""
    import SimpleITK as sitk
    from radiomics import featureextractor

    extractor = featureextractor.RadiomicsFeatureExtractor(force2D=True, binWidth=25)
    extractor.disableAllFeatures()
    for c in ("firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm"):
        extractor.enableFeatureClassByName(c)
    image, mask = sitk.GetImageFromArray(volume.array.astype(np.float32)), sitk.GetImageFromArray(roi.astype(np.uint8))
    for im in (image, mask):
        im.SetSpacing(tuple(float(v) for v in volume.spacing))
    return {k: float(v) for k, v in extractor.execute(image, mask).items() if not k.startswith("diagnostics")}


def _soft_roi(setup, entry):
    """The soft-tissue ROI of an entry: its labels 5/6/7/9 inside the reconstruction FOV."""
    volume = _read(setup, entry["image"])
    roi = np.isin(np.rint(_read(setup, entry["labels"]).array), [5, 6, 7, 9])
    return roi & volume.fov_mask if volume.fov_mask is not None else roi


def test_none_row_radiomics_ccc_matches_pyradiomics_run_directly(setup):
    """The paired paths' radiomics columns of "none": per-feature CCC (sharp input vs paired soft image, across
    subjects) of pyradiomics' own features on the soft scan's soft-tissue labels, averaged per group."""
    features = _pyradiomics
    rows = setup["rows"]
    for source, target in PAIRED.items():
        sharp_f, soft_f = [], []
        for sharp_e, soft_e in _pairs(setup, source):
            soft = _read(setup, soft_e["image"])
            roi = _soft_roi(setup, soft_e)
            sharp_f.append(features(_read(setup, sharp_e["image"]), roi))
            soft_f.append(features(soft, roi))
        names = list(soft_f[0])
        assert len(names) == 93
        ccc = {n: _lin([f[n] for f in sharp_f], [f[n] for f in soft_f]) for n in names}
        for key, cls in (("radiomics_ccc_all", None), ("radiomics_ccc_glcm", "glcm"), ("radiomics_ccc_glrlm", "glrlm")):
            values = [v for n, v in ccc.items() if (cls is None or n.split("_")[1] == cls) and np.isfinite(v)]
            row = _row(rows, "none", f"{source}->{target}")
            assert float(row[key]) == pytest.approx(np.mean(values), rel=1e-6, abs=1e-9), (source, key)
        for r in rows:
            if r["path"] == f"{source}->{target}" and r["status"] == "ok":
                assert math.isfinite(float(r["radiomics_ccc_all"])), r["method"]
    assert _row(rows, "none", "ge_bone->siemens_b30f")["radiomics_ccc_all"] == ""  # unpaired: not applicable


UNPAIRED = {"ge_bone": "siemens_b30f", "ge_standard": "siemens_b30f"}
SAMPLED = [0, 2, 3, 5]  # --distribution_slices 4 of 6 slices: round(linspace(0, 5, 4))


def _slices(array):
    return np.asarray(array, np.float32)[SAMPLED][:, None]


def _distribution_sets(setup, path, harmonize=None):
    """(harmonized slices, target slices, harmonized entries, target entries) of one path, read from the files;
    ``harmonize(volume, source, target)`` -> HU array (None: the input itself, the "none" method)."""
    source, target = path.split("->")
    entries = setup["entries"]
    if source in PAIRED and PAIRED[source] == target:
        pairs = _pairs(setup, source)
        sources, targets = [a for a, _ in pairs], [b for _, b in pairs]
    else:
        sources = [e for e in entries if e["kernel"] == source]
        targets = [e for e in entries if e["kernel"] == target]
    harmonized = []
    for e in sources:
        volume = _read(setup, e["image"])
        harmonized.append(volume.array if harmonize is None else harmonize(volume, source, target))
    fake = np.concatenate([_slices(a) for a in harmonized])
    real = np.concatenate([_slices(_read(setup, e["image"]).array) for e in targets])
    return fake, real, harmonized, sources, targets


def test_distribution_columns_match_fid_and_kid_on_the_same_slices(setup):
    """fid_ct / kid_ct = ctharmonize.metrics.fid / kid (shipped CT feature network, real = target set first) on the
    sampled slices read from the files: "none" (so the paired rows are FID(source slices, soft slices)) and the
    baseline harmonized by hand, on every path."""
    from ctharmonize.inference import harmonize_volume
    from ctharmonize.inference.bundle_harmonizer import load_bundle_harmonizer
    from ctharmonize.metrics import fid, kid

    baseline = load_bundle_harmonizer(BASELINE, device="cpu")
    methods = {"none": None, "baseline": lambda v, s, t: harmonize_volume(v, baseline, s, t).array}
    for path in [*(f"{s}->{t}" for s, t in PAIRED.items()), *(f"{s}->{t}" for s, t in UNPAIRED.items())]:
        for role, harmonize in methods.items():
            fake, real, *_ = _distribution_sets(setup, path, harmonize)
            assert fake.shape[0] == real.shape[0] == 2 * len(SAMPLED)
            row = _row(setup["rows"], role, path)
            assert float(row["fid_ct"]) == pytest.approx(fid(real, fake, intensity="hu"), rel=1e-4, abs=1e-8), (role, path)
            assert float(row["kid_ct"]) == pytest.approx(kid(real, fake, intensity="hu", seed=0).mean, rel=1e-4,
                                                         abs=1e-8), (role, path)
        assert float(_row(setup["rows"], "baseline", path)["fid_ct"]) != float(_row(setup["rows"], "none", path)["fid_ct"])
    tiny = _row(setup["rows"], "bundle", "siemens_b50f->siemens_b30f")
    assert math.isfinite(float(tiny["fid_ct"])) and math.isfinite(float(tiny["kid_ct"]))
    assert _row(setup["rows"], "bundle", "ge_bone->siemens_b30f")["fid_ct"] == ""  # not supported


def test_radiomics_aligned_pct_matches_feature_alignment(setup):
    """radiomics_aligned_pct of "none" = feature_alignment(...).percent_same_after (Welch, alpha 0.01) of pyradiomics
    run directly: paired: input vs paired soft image on the soft scan's ROI; unpaired: GE images on their own ROI vs
    every B30f image on its own ROI."""
    from ctharmonize.metrics import feature_alignment

    for path in [*(f"{s}->{t}" for s, t in PAIRED.items()), *(f"{s}->{t}" for s, t in UNPAIRED.items())]:
        _, _, harmonized, sources, targets = _distribution_sets(setup, path)
        paired = path.split("->")[0] in PAIRED and PAIRED[path.split("->")[0]] == path.split("->")[1]
        h_f = [_pyradiomics(_read(setup, s["image"]), _soft_roi(setup, t if paired else s))
               for s, t in zip(sources, targets if paired else sources, strict=True)]
        t_f = [_pyradiomics(_read(setup, t["image"]), _soft_roi(setup, t)) for t in targets]
        expected = feature_alignment(h_f, t_f, h_f).percent_same_after
        row = _row(setup["rows"], "none", path)
        assert math.isfinite(expected)
        assert float(row["radiomics_aligned_pct"]) == pytest.approx(expected, rel=1e-9), path
    for r in setup["rows"]:
        if r["status"] == "ok" and r["kind"] != "truth":
            assert 0.0 <= float(r["radiomics_aligned_pct"]) <= 100.0, (r["method"], r["path"])
        elif r["kind"] == "truth":
            assert r["radiomics_aligned_pct"] == "", r["path"]  # no target kernel to align with


def test_distribution_columns_in_every_output(setup):
    out = setup["out"]
    doc = json.loads((out / "leaderboard.json").read_text())
    columns = {c["key"]: c for c in doc["columns"]}
    assert columns["fid_ct"]["better"] == "lower" and columns["kid_ct"]["better"] == "lower"
    assert columns["radiomics_aligned_pct"]["better"] == "higher"
    assert all(set(columns[k]["kinds"]) == {"paired", "unpaired"} for k in ("fid_ct", "kid_ct", "radiomics_aligned_pct"))
    assert doc["settings"]["distribution"] is True and doc["settings"]["distribution_slices"] == 4
    csv_rows = {(r["method"], r["path"]): r for r in setup["rows"]}
    for r in doc["rows"]:
        c = csv_rows[(r["method"], r["path"])]
        for key in ("fid_ct", "kid_ct", "radiomics_aligned_pct"):
            if r["status"] == "ok" and r["kind"] != "truth":
                assert r[key] == pytest.approx(float(c[key]), rel=1e-12)
            else:
                assert r[key] is None and c[key] == ""
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "FID (CT features)" in md and "KID (CT features)" in md and "radiomics aligned (%)" in md
    none = _row(setup["rows"], "none", "ge_bone->siemens_b30f")
    line = next(x for x in md.splitlines() if x.startswith("| none | ge_bone->siemens_b30f |"))
    assert f"{float(none['fid_ct']):.2f}" in line and f"{float(none['kid_ct']):.4f}" in line
    beats = {b["path"]: b for b in doc["beats_baseline"]}
    tiny = _row(setup["rows"], "bundle", "siemens_b50f->siemens_b30f")
    base = _row(setup["rows"], "baseline", "siemens_b50f->siemens_b30f")
    assert beats["siemens_b50f->siemens_b30f"]["fid_ct"] == ("✓" if float(tiny["fid_ct"]) < float(base["fid_ct"]) else "✗")


def test_nodistribution_leaves_the_columns_empty(setup, tmp_path):
    out = tmp_path / "nodist"
    assert main(["benchmark", "--bundles", "", "--baseline", "", "--datalist", str(setup["datalist"]), "--out", str(out),
                 "--n_resamples", "20", "--nodistribution", "--noradiomics", "--noprogress"]) == 0
    rows = list(csv.DictReader((out / "leaderboard.csv").open(encoding="utf-8")))
    assert len(rows) == N_PATHS and all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert r["fid_ct"] == r["kid_ct"] == r["radiomics_aligned_pct"] == "", r["path"]
        assert r["ssim_gt"] != ""  # the other columns are there
    doc = json.loads((out / "leaderboard.json").read_text())
    assert doc["settings"]["distribution"] is False and "--nodistribution" in doc["command"]
    assert all(r["fid_ct"] is None for r in doc["rows"])
