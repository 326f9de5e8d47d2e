"""``ctharmonize benchmark``: the truth paths (any kernel -> the ground truth, paper 001) and the MTF50 / d′ columns.

A tiny simulated test set (256², 4 slices, 2 subjects per vendor: the coarsest grid where the skin-air MTF of the
sharp kernels and the NPS ROIs for d′ are measurable) is benchmarked with "none", the shipped classical baseline
(no "ground_truth" domain: "not supported" on truth paths) and a copy of the baseline whose network also knows the
domain "ground_truth" (band energies of B30f halved: a smoothing "truth" mapping). Values are recomputed here
from the files: scikit-image / numpy for the image measures, the physics tools called directly for MTF50 and d′.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ctharmonize.cli import main
from ctharmonize.errors import InputError
from ctharmonize.io import read_volume

BASELINE = Path(__file__).resolve().parents[2] / "bundles" / "kernel_normalization_ct_harmonization"
KERNELS = ("siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard")
TRUTH_PATHS = [f"{k}->ground_truth" for k in KERNELS]
PAIRED = {"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard"}
WINDOW = (-1024.0, 3072.0)
TRUTH_NAME = "Band energies to ground truth (test)"


def write_truth_bundle(root: Path) -> Path:
    """The shipped baseline with "ground_truth" added to its domains; its energies are B30f's with the band-pass
    energies halved (the residual kept)."""
    import torch

    from ctharmonize.networks.nets.band_energy_normalizer import _encode_names

    shutil.copytree(BASELINE, root, ignore=shutil.ignore_patterns("eval", "sample", "train_output*"))
    config = json.loads((root / "configs" / "inference.json").read_text())
    config["domains"] = [*config["domains"], "ground_truth"]
    (root / "configs" / "inference.json").write_text(json.dumps(config, indent=1))
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    meta["name"] = TRUTH_NAME
    (root / "configs" / "metadata.json").write_text(json.dumps(meta, indent=1))
    state = torch.load(root / "models" / "model.pt", map_location="cpu")
    b30f = config["domains"].index("siemens_b30f")
    truth = state["band_energy"][b30f].clone()
    truth[:-1] *= 0.5
    state["band_energy"] = torch.cat([state["band_energy"], truth[None]])
    state["pixel_spacing"] = torch.cat([state["pixel_spacing"], state["pixel_spacing"][b30f:b30f + 1]])
    state["voxel_count"] = torch.cat([state["voxel_count"], state["voxel_count"][b30f:b30f + 1]])
    state["domain_names"] = _encode_names(config["domains"])
    torch.save(state, root / "models" / "model.pt")
    return root


def _strip_truth(datalist: Path, out: Path, keep) -> Path:
    """A copy of ``datalist`` (absolute paths) whose entries lose ``ground_truth`` unless ``keep(entry)``."""
    doc = json.loads(datalist.read_text())
    for e in doc["data"]:
        for key in ("image", "lung", "labels", "ground_truth"):
            if key in e:
                e[key] = str(datalist.parent / e[key])
        if not keep(e):
            del e["ground_truth"]
    out.write_text(json.dumps(doc))
    return out


def _rows(out: Path) -> list[dict]:
    return list(csv.DictReader((out / "leaderboard.csv").open(encoding="utf-8")))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from ctharmonize.simulation import generate_dataset

    root = tmp_path_factory.mktemp("benchmark_truth")
    datalist = generate_dataset(root / "sim", subjects=2, size=256, slices=4, seed=11, split="test", progress=False)
    bundle = write_truth_bundle(root / "truth_bundle")
    out = root / "board"
    assert main(["benchmark", "--bundles", str(bundle), "--datalist", str(datalist), "--out", str(out),
                 "--trust_bundle", "--device", "cpu", "--n_resamples", "50", "--nodistribution", "--noradiomics",
                 "--noprogress"]) == 0
    return {"datalist": datalist, "base": datalist.parent, "bundle": bundle, "out": out, "rows": _rows(out),
            "entries": json.loads(datalist.read_text())["data"], "root": root}


def _row(rows, method, path):
    """The row of ``path`` whose role is ``method`` ("none", "baseline") or whose method name starts with it."""
    return next(r for r in rows if (r["role"] == method or r["method"].startswith(method)) and r["path"] == path)


def _read(setup, rel):
    return read_volume(setup["base"] / rel)


def _laa(hu, lung):
    return 100.0 * np.count_nonzero(hu[lung > 0] < -950) / np.count_nonzero(lung > 0)


def _ssim(a, b):
    a, b = np.clip(a.astype(float), *WINDOW), np.clip(b.astype(float), *WINDOW)
    return float(np.mean([structural_similarity(b[k], a[k], data_range=4096.0) for k in range(a.shape[0])]))


def _psnr(a, b):
    return float(peak_signal_noise_ratio(np.clip(b.astype(float), *WINDOW), np.clip(a.astype(float), *WINDOW),
                                         data_range=4096.0))


def _truth_harmonizer(setup):
    from ctharmonize.inference.bundle_harmonizer import load_bundle_harmonizer

    return load_bundle_harmonizer(setup["bundle"], device="cpu", trust=True)


def _by_hand(setup, source, harmonizer=None):
    """[(entry, input volume, image harmonized to the ground truth (the input for "none"), ground truth, lung)] of
    every ``source`` scan."""
    from ctharmonize.inference import harmonize_volume

    out = []
    for e in setup["entries"]:
        if e["kernel"] != source:
            continue
        volume = _read(setup, e["image"])
        image = volume.array if harmonizer is None else harmonize_volume(volume, harmonizer, source,
                                                                         "ground_truth").array
        lung = np.rint(_read(setup, e["lung"]).array).astype(np.uint8)
        out.append((e, volume, image, _read(setup, e["ground_truth"]), lung))
    return out


def test_truth_rows_statuses_and_outputs(setup):
    rows = setup["rows"]
    assert len(rows) == 3 * 8
    assert [r["path"] for r in rows[-12:]] == [p for p in TRUTH_PATHS for _ in range(3)]  # after the other paths
    for path in TRUTH_PATHS:
        none, base, truth = _row(rows, "none", path), _row(rows, "baseline", path), _row(rows, TRUTH_NAME, path)
        assert none["status"] == "ok" and none["n"] == "2" and none["kind"] == "truth"
        assert none["target"] == "ground_truth"
        assert base["status"] == "not supported" and base["n"] == "0"  # the baseline has no ground_truth domain
        assert truth["status"] == "ok" and truth["n"] == "2"
        assert math.isfinite(float(truth["slices_per_s"])) and none["slices_per_s"] == ""
        for key in ("noise_sd_ratio", "ssim_soft", "psnr_soft_db", "laa950_rmse_pp", "perc15_diff_hu", "mld_diff_hu",
                    "nps_peak_ref_lpcm", "mtf50_ref_lpcm", "dprime_npwe_ref", "fid_ct", "laa950_median_pct"):
            assert none[key] == "" and truth[key] == "", (path, key)  # soft / target-kernel columns: empty
    for r in rows:  # the truth-only columns are empty elsewhere
        if r["kind"] != "truth":
            assert r["perc15_gt_diff_hu"] == "" and r["mld_gt_diff_hu"] == "", r["path"]
    md = (setup["out"] / "leaderboard.md").read_text(encoding="utf-8")
    assert "| none | siemens_b50f->ground_truth | 2 |" in md and "MTF50 (lp/cm) [ref]" in md and "d′ NPWE [ref]" in md
    doc = json.loads((setup["out"] / "leaderboard.json").read_text())
    columns = {c["key"]: c for c in doc["columns"]}
    for key in ("ssim_gt", "psnr_gt_db", "laa950_gt_rmse_pp", "dice_muscle", "mtf50_lpcm", "dprime_npwe",
                "nps_peak_lpcm", "slices_per_s"):
        assert "truth" in columns[key]["kinds"], key
    assert columns["perc15_gt_diff_hu"]["kinds"] == ["truth"] and columns["mld_gt_diff_hu"]["better"] == "closer to 0"
    assert "truth" not in columns["ssim_soft"]["kinds"] and "truth" not in columns["noise_sd_ratio"]["kinds"]
    assert columns["mtf50_lpcm"]["better"] == "closer to mtf50_ref_lpcm"
    assert columns["dprime_npwe"]["better"] == "closer to dprime_npwe_ref"
    assert doc["settings"]["dprime"]["diameter_mm"] == 4.0 and doc["settings"]["dprime"]["contrast_hu"] == 100.0


@pytest.mark.parametrize("method", ["none", TRUTH_NAME])
def test_truth_rows_match_numpy_against_the_ground_truth_files(setup, method):
    """SSIM / PSNR / LAA-950 RMSE / Perc15 and MLD differences of the images harmonized to the ground truth (by hand
    with the bundle's harmonizer; the inputs for "none") against the ground-truth files."""
    harmonizer = None if method == "none" else _truth_harmonizer(setup)
    for source in KERNELS:
        ssims, psnrs, laa, laa_gt, p15, mld = [], [], [], [], [], []
        for _, _, image, truth, lung in _by_hand(setup, source, harmonizer):
            gt = truth.array
            ssims.append(_ssim(image, gt))
            psnrs.append(_psnr(image, gt))
            laa.append(_laa(image, lung))
            laa_gt.append(_laa(gt, lung))
            inside = lung > 0
            p15.append(np.percentile(image[inside], 15) - np.percentile(gt[inside], 15))
            mld.append(image[inside].astype(float).mean() - gt[inside].astype(float).mean())
        row = _row(setup["rows"], method, f"{source}->ground_truth")
        assert float(row["ssim_gt"]) == pytest.approx(np.median(ssims), rel=1e-6), source
        assert float(row["psnr_gt_db"]) == pytest.approx(np.median(psnrs), rel=1e-6), source
        assert float(row["laa950_gt_rmse_pp"]) == pytest.approx(
            math.sqrt(np.mean((np.array(laa) - np.array(laa_gt)) ** 2)), rel=1e-9, abs=1e-9), source
        assert float(row["perc15_gt_diff_hu"]) == pytest.approx(np.mean(p15), abs=0.05), source
        assert float(row["mld_gt_diff_hu"]) == pytest.approx(np.mean(mld), rel=1e-5, abs=1e-3), source
        if method == "none":
            assert float(row["dice_muscle"]) == 1.0 and float(row["dice_sat"]) == 1.0
        else:
            assert float(row["dice_muscle"]) < 1.0
    # the truth mapping really changes the images: it is closer to the truth than the sharp input
    for source in ("siemens_b50f", "ge_bone"):
        path = f"{source}->ground_truth"
        assert float(_row(setup["rows"], TRUTH_NAME, path)["psnr_gt_db"]) != float(_row(setup["rows"], "none", path)
                                                                                  ["psnr_gt_db"])


def _flat_region(truth):
    """The truth's body where it is flat (max - min <= 1 HU) over the in-plane square of half side max(2 px, 4 mm)."""
    from ctharmonize.segmentation.body_mask import body_mask, smooth_hu

    g = truth.array.astype(np.float32)
    r = max(2, math.ceil(4.0 / min(truth.spacing[:2]) - 1e-9))
    size = (1, 2 * r + 1, 2 * r + 1)
    flat = ndimage.maximum_filter(g, size=size) - ndimage.minimum_filter(g, size=size) <= 1.0
    return flat & body_mask(smooth_hu(g, 1.0), truth.spacing)


def _physics_by_hand(image, spacing, fov, truth):
    """(MTF50, d′) with the physics tools called directly: skin_air_mtf, measure_nps of image - truth in the flat
    region (ROI side 32, 16 or 8 px, the first that fits), detectability (NPWE, 4 mm, 100 HU)."""
    from ctharmonize.physics import detectability, measure_nps, skin_air_mtf

    edge = skin_air_mtf(image, spacing, fov_mask=fov)
    region = _flat_region(truth)
    for n in (32, 16, 8):
        try:
            nps = measure_nps(image, spacing, fov_mask=fov, body=region, reference=truth.array, roi_size=n)
            break
        except InputError:
            continue
    assert len(nps.rois) >= 4
    return edge.mtf50, detectability(edge, nps).dprime_npwe


def test_mtf50_and_dprime_match_the_physics_tools(setup):
    """Paired "none" row: the inputs' and the soft references' MTF50 / d′; a truth row of the truth bundle: its
    outputs' (with the input's FOV mask), harmonized by hand."""
    rows = setup["rows"]
    for source, target in PAIRED.items():
        mine, ref = [], []
        for e, volume, image, truth, _ in _by_hand(setup, source):
            mine.append(_physics_by_hand(image, volume.spacing, volume.fov_mask, truth))
            soft_e = next(s for s in setup["entries"] if s["subject"] == e["subject"] and s["kernel"] == target)
            soft = _read(setup, soft_e["image"])
            ref.append(_physics_by_hand(soft.array, soft.spacing, soft.fov_mask, truth))
        row = _row(rows, "none", f"{source}->{target}")
        assert all(math.isfinite(v) for pair in mine + ref for v in pair)  # measurable at 256²: not a NaN == NaN test
        assert float(row["mtf50_lpcm"]) == pytest.approx(np.median([m for m, _ in mine]), rel=1e-9)
        assert float(row["dprime_npwe"]) == pytest.approx(np.median([d for _, d in mine]), rel=1e-9)
        assert float(row["mtf50_ref_lpcm"]) == pytest.approx(np.median([m for m, _ in ref]), rel=1e-9)
        assert float(row["dprime_npwe_ref"]) == pytest.approx(np.median([d for _, d in ref]), rel=1e-9)
        # a sharp kernel: higher MTF50 and lower d′ than its soft kernel
        assert float(row["mtf50_lpcm"]) > float(row["mtf50_ref_lpcm"])
        assert float(row["dprime_npwe"]) < float(row["dprime_npwe_ref"])
        # the same images on their truth row ("none": the inputs)
        truth_row = _row(rows, "none", f"{source}->ground_truth")
        assert float(truth_row["mtf50_lpcm"]) == float(row["mtf50_lpcm"])
        assert float(truth_row["dprime_npwe"]) == float(row["dprime_npwe"])
    # unpaired reference: every Siemens B30f image
    b30f = [_physics_by_hand(volume.array, volume.spacing, volume.fov_mask, truth)
            for _, volume, _, truth, _ in _by_hand(setup, "siemens_b30f")]
    row = _row(rows, "none", "ge_bone->siemens_b30f")
    assert float(row["mtf50_ref_lpcm"]) == pytest.approx(np.median([m for m, _ in b30f]), rel=1e-9)
    assert float(row["dprime_npwe_ref"]) == pytest.approx(np.median([d for _, d in b30f]), rel=1e-9)
    # one scan of a truth row: the bundle's output harmonized by hand, the input's FOV mask
    harmonizer = _truth_harmonizer(setup)
    values = [_physics_by_hand(image, volume.spacing, volume.fov_mask, truth)
              for _, volume, image, truth, _ in _by_hand(setup, "ge_standard", harmonizer)]
    row = _row(rows, TRUTH_NAME, "ge_standard->ground_truth")
    assert all(math.isfinite(v) for pair in values for v in pair)
    assert float(row["mtf50_lpcm"]) == pytest.approx(np.median([m for m, _ in values]), rel=1e-6)
    assert float(row["dprime_npwe"]) == pytest.approx(np.median([d for _, d in values]), rel=1e-6)


def test_beats_baseline_says_no_baseline_row_on_truth_paths(setup):
    doc = json.loads((setup["out"] / "leaderboard.json").read_text())
    beats = {b["path"]: b for b in doc["beats_baseline"] if b["method"].startswith(TRUTH_NAME)}
    assert len(beats) == 8
    for path in TRUTH_PATHS:
        assert beats[path]["status"] == "no baseline row (baseline: not supported)", path
        assert "every" not in beats[path] and "ssim_gt" not in beats[path]  # no verdict, no claimed win
    siemens = beats["siemens_b50f->siemens_b30f"]
    assert siemens["status"] == "ok" and siemens["mtf50_lpcm"] in ("✓", "✗", "=")
    md = (setup["out"] / "leaderboard.md").read_text(encoding="utf-8")
    assert "| siemens_b50f->ground_truth | no baseline row (baseline: not supported) |" in md


def test_beats_baseline_without_a_baseline_row():
    from ctharmonize.evaluation.benchmark_table import beats_baseline

    cand = {"role": "bundle", "method": "c", "path": "k->ground_truth", "kind": "truth", "status": "ok",
            "ssim_gt": 0.9, "mtf50_lpcm": 3.0, "mtf50_ref_lpcm": float("nan")}
    unsupported = {**cand, "role": "bundle", "method": "d", "status": "not supported"}
    [a, b] = beats_baseline([cand, unsupported], lambda r: r["role"] == "bundle")  # no baseline row at all
    assert a["status"] == "no baseline row" and "every" not in a
    assert b["status"] == "not supported"  # its own status first
    base = {**cand, "role": "baseline", "method": "b", "ssim_gt": 0.8, "mtf50_lpcm": 2.0}
    [c] = beats_baseline([base, cand], lambda r: r["role"] == "bundle")
    assert c["ssim_gt"] == "✓" and c["mtf50_lpcm"] == "–"  # no reference MTF50: not compared
    assert "noise_sd_ratio" not in c and c["every"] == "✓"


def test_supported_paths_read_domains_and_targets():
    from ctharmonize.evaluation.benchmark import PATHS, BenchmarkPath, TimedHarmonizer, _supports

    assert PATHS[-4:] == tuple(BenchmarkPath(k, "ground_truth", "truth") for k in KERNELS)

    class ToTruth:  # maps every kernel to the ground truth only (as the MTF-conditioned harmonizer)
        domains = ("siemens_b50f", "siemens_b30f", "ground_truth")
        targets = ("ground_truth",)

    class KernelToKernel:
        domains = ("siemens_b50f", "siemens_b30f")

    to_truth, k2k = TimedHarmonizer(ToTruth()), TimedHarmonizer(KernelToKernel())
    assert _supports(to_truth, BenchmarkPath("siemens_b50f", "ground_truth", "truth"))
    assert not _supports(to_truth, BenchmarkPath("siemens_b50f", "siemens_b30f", "paired"))
    assert not _supports(to_truth, BenchmarkPath("ge_bone", "ground_truth", "truth"))
    assert _supports(k2k, BenchmarkPath("siemens_b50f", "siemens_b30f", "paired"))
    assert not _supports(k2k, BenchmarkPath("siemens_b50f", "ground_truth", "truth"))
    assert _supports(None, BenchmarkPath("ge_bone", "ground_truth", "truth"))  # "none"


def test_physics_measures_are_nan_when_the_mtf_cannot_be_measured():
    from ctharmonize.evaluation.benchmark_measures import ScanTruth, physics_measures
    from ctharmonize.evaluation.pairing import Scan
    from ctharmonize.physics import skin_air_mtf

    air = np.full((3, 64, 64), -1000.0, np.float32)
    with pytest.raises(InputError):
        skin_air_mtf(air, (2.0, 2.0, 2.0))
    truth = ScanTruth(Scan(0, "x.nii.gz", "siemens_b30f", "s"))  # no ground truth
    values = physics_measures(air, (2.0, 2.0, 2.0), None, truth)
    assert set(values) == {"mtf50_lpcm", "dprime_npwe"} and all(math.isnan(v) for v in values.values())


def test_entries_without_ground_truth(setup):
    """Subject sim-siemens-001 and every GE entry lose their ground truth: the GE truth rows are "no ground truth",
    the Siemens truth rows use subject 000 only; no crash. Then with no ground truth anywhere."""
    kept = "sim-siemens-000"
    datalist = _strip_truth(setup["datalist"], setup["root"] / "partial.json", lambda e: e["subject"] == kept)
    out = setup["root"] / "partial_board"
    assert main(["benchmark", "--bundles", "", "--baseline", "", "--datalist", str(datalist), "--out", str(out),
                 "--n_resamples", "20", "--nodistribution", "--noradiomics", "--noprogress"]) == 0
    rows = {r["path"]: r for r in _rows(out)}
    assert len(rows) == 8
    assert rows["ge_bone->ground_truth"]["status"] == rows["ge_standard->ground_truth"]["status"] == "no ground truth"
    assert rows["ge_bone->ground_truth"]["n"] == "0" and rows["ge_bone->ground_truth"]["ssim_gt"] == ""
    assert all(rows[p]["status"] == "ok" for p in rows if not p.startswith("ge_") or "ground_truth" not in p)
    for source in ("siemens_b50f", "siemens_b30f"):
        row = rows[f"{source}->ground_truth"]
        assert row["n"] == "1"
        [(_, _, image, truth, _)] = [x for x in _by_hand(setup, source) if x[0]["subject"] == kept]
        assert float(row["ssim_gt"]) == pytest.approx(_ssim(image, truth.array), rel=1e-6)
    assert rows["ge_bone->siemens_b30f"]["ssim_gt"] == ""  # no truth for GE
    assert math.isfinite(float(rows["ge_bone->siemens_b30f"]["mtf50_lpcm"]))  # the MTF needs no truth

    none_at_all = _strip_truth(setup["datalist"], setup["root"] / "no_truth.json", lambda e: False)
    out = setup["root"] / "no_truth_board"
    assert main(["benchmark", "--bundles", "", "--baseline", "", "--datalist", str(none_at_all), "--out", str(out),
                 "--n_resamples", "20", "--nodistribution", "--noradiomics", "--noprogress"]) == 0
    rows = {r["path"]: r for r in _rows(out)}
    assert all(rows[p]["status"] == "no ground truth" for p in TRUTH_PATHS)
    assert all(rows[p]["status"] == "ok" and rows[p]["ssim_gt"] == "" for p in rows if p not in TRUTH_PATHS)
    assert math.isfinite(float(rows["siemens_b50f->siemens_b30f"]["mtf50_lpcm"]))
