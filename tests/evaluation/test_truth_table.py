"""``ctharmonize truth-table`` (paper 001 Table I form): per-slice SSIM / NRMSE / PSNR and LAA-950 / Perc15 / lung
mass recomputed here with scikit-image and numpy from the files; an identity harmonizer (after == before) and one
that returns the ground truth (SSIM 1, |Δ| 0); ComBat against a direct neuroCombat call; d′ / NPS; clinical
datalists without kernel groups; pre-harmonized files; the one-line refusals."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from ctharmonize.cli import main
from ctharmonize.data import datalist_entries
from ctharmonize.errors import ConfigError
from ctharmonize.evaluation.truth_table import run_truth_table
from ctharmonize.io import read_label_map, read_volume

REPO = Path(__file__).resolve().parents[2]


def simulate(out: Path, size: int, slices: int, preset: str = "force_family") -> Path:
    assert main(["simulate", "--out", str(out), "--preset", preset, "--subjects", "1", "--slices", str(slices),
                 "--size", str(size), "--seed", "3", "--split", "test", "--noprogress"]) == 0
    return out / "datalist.json"


def subset(datalist: Path, name: str, keep) -> Path:
    """A datalist next to ``datalist`` (its relative paths stay valid) with the entries ``keep(entry)`` accepts."""
    doc = json.loads(datalist.read_text())
    doc["data"] = [e for e in doc["data"] if keep(e)]
    path = datalist.parent / name
    path.write_text(json.dumps(doc))
    return path


def read_csv(path: Path) -> list[dict]:
    def value(v: str):
        try:
            return float(v) if v != "" else math.nan
        except ValueError:
            return v

    with open(path, newline="") as fh:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(fh)]


class Identity:
    """Returns its input: every 'after' must equal 'before'."""

    def __init__(self, kernels):
        self.domains, self.targets = (*kernels, "ground_truth"), ("ground_truth",)

    def __call__(self, hu, source, target, fov_mask=None):
        return np.array(hu, copy=True)


class Truth:
    """Returns the ground truth of each slice it is given (found by the slice's bytes among the datalist's images)."""

    def __init__(self, entries):
        kernels = sorted({e["kernel"] for e in entries})
        self.domains, self.targets = (*kernels, "ground_truth"), ("ground_truth",)
        self.index = {}
        for e in entries:
            image, truth = read_volume(e["image"]).array, read_volume(e["ground_truth"]).array
            for z in range(image.shape[0]):
                self.index[self.key(image[z])] = truth[z]

    @staticmethod
    def key(hu) -> str:
        return hashlib.sha1(np.ascontiguousarray(hu, dtype=np.float32).tobytes()).hexdigest()

    def __call__(self, hu, source, target, fov_mask=None):
        return np.stack([self.index[self.key(s)] for s in hu])


class KernelToKernel(Identity):
    """A kernel-to-kernel harmonizer (no ground-truth target)."""

    def __init__(self):
        self.domains = self.targets = ("siemens_br32f", "siemens_b30f")


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    return simulate(tmp_path_factory.mktemp("tt") / "sim", size=128, slices=4)


@pytest.fixture(scope="module")
def table(sim, tmp_path_factory):
    entries, _ = datalist_entries(sim, "test")
    out = tmp_path_factory.mktemp("tt_out") / "table"
    doc = run_truth_table(sim, out, harmonizers={"identity": Identity({e["kernel"] for e in entries}),
                                                 "truth": Truth(entries)}, physics=False, progress=False)
    return doc, out, read_csv(out / "truth_table_slices.csv"), read_csv(out / "truth_table.csv")


def unit(hu):
    return (np.clip(np.asarray(hu, np.float64), -1024.0, 3072.0) + 1024.0) / 2048.0 - 1.0


def test_slice_rows_against_skimage_and_numpy(table, sim):
    doc, out, slices, _ = table
    none = [r for r in slices if r["method"] == "none"]
    assert len(none) == 32 * 4 and doc["n_slices"] == 128  # 32 renditions x the 4 slices (all have lung)
    picked = [r for r in none if (r["rendition"], r["dose"]) in {("Br32f", "low"), ("Br64f", "high"),
                                                                 ("Qr49f", "low")}]
    assert len(picked) == 12
    for r in picked:
        image = read_volume(r["image"])
        entry = next(e for e in datalist_entries(sim, "test")[0] if e["image"] == r["image"])
        truth = read_volume(entry["ground_truth"]).array
        z = int(r["slice"])
        lung = read_label_map(entry["lung"], like=image)[z] > 0
        fov = image.fov_mask[z]
        x, g = unit(image.array[z]), unit(truth[z])
        mse = np.mean((x - g)[fov] ** 2)
        assert r["nrmse_pct"] == pytest.approx(100 * np.sqrt(np.sum((x - g)[fov] ** 2) / np.sum(g[fov] ** 2)), rel=1e-4)
        assert r["psnr_db"] == pytest.approx(10 * np.log10(4.0 / mse), rel=1e-4)
        smap = structural_similarity(g, np.where(fov, x, g), win_size=7, data_range=2.0, full=True)[1]
        assert r["ssim_pct"] == pytest.approx(100 * smap[fov].mean(), rel=1e-4, abs=1e-3)
        m = lung & fov
        assert r["lung_pixels"] == m.sum() > 100
        sx, sy, sz = image.spacing

        voxel_cm3 = sx * sy * sz / 1000

        def bio(hu, m=m, voxel_cm3=voxel_cm3):
            v = np.asarray(hu, np.float64)[m]
            return 100 * np.mean(v < -950), np.percentile(v, 15), (v.mean() + 1024) / 1024 * voxel_cm3 * v.size

        laa, p15, mass = bio(image.array[z])
        gl, gp, gm = bio(truth[z])
        assert (r["laa950_pct"], r["perc15_hu"], r["mass_g"]) == pytest.approx((laa, p15, mass), rel=1e-5)
        assert (r["gt_laa950_pct"], r["gt_perc15_hu"], r["gt_mass_g"]) == pytest.approx((gl, gp, gm), rel=1e-5)
        assert r["abs_dlaa950_pct"] == pytest.approx(abs(laa - gl), abs=1e-6)
        assert r["abs_dperc15_hu"] == pytest.approx(abs(p15 - gp), abs=1e-3)
        assert r["abs_dmass_g"] == pytest.approx(abs(mass - gm), rel=1e-4, abs=1e-7)
    # the table: mean and SD (ddof 1) over the slices, per group; NH is far from the truth on this noisy set
    _, _, _, summary = table
    overall = next(s for s in summary if s["method"] == "none" and s["group_by"] == "all")
    for m in ("nrmse_pct", "ssim_pct", "abs_dperc15_hu"):
        values = [r[m] for r in none]
        assert overall[f"{m}_mean"] == pytest.approx(np.mean(values), rel=1e-6)
        assert overall[f"{m}_sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-6)
    groups = {(s["group_by"], s["group"]): s["n_slices"] for s in summary if s["method"] == "none"}
    assert groups[("kernel_group", "smooth")] == 40 and groups[("kernel_group", "sharp")] == 64
    assert groups[("dose", "low")] == groups[("dose", "high")] == 64
    assert groups[("rendition_dose", "Br69f(3) low dose")] == groups[("rendition_dose", "Qr61f high dose")] == 4
    assert 0 < overall["ssim_pct_mean"] < 100 and overall["abs_dlaa950_pct_mean"] > 1


def test_identity_and_ground_truth_harmonizers(table):
    doc, out, slices, summary = table
    by = {(r["method"], r["image"], r["slice"]): r for r in slices}
    keys = ("nrmse_pct", "ssim_pct", "psnr_db", "laa950_pct", "perc15_hu", "mass_g", "abs_dlaa950_pct")
    for (method, image, z), r in by.items():
        if method == "identity":
            assert all(r[k] == by["none", image, z][k] for k in keys)
        if method == "truth":
            assert r["ssim_pct"] == pytest.approx(100.0) and r["nrmse_pct"] == 0 and r["psnr_db"] == math.inf
            assert r["abs_dlaa950_pct"] == r["abs_dperc15_hu"] == r["abs_dmass_g"] == 0
    rows = {(s["method"], s["group_by"], s["group"]): s for s in summary}
    assert rows["truth", "all", "all"]["psnr_db_mean"] == math.inf
    assert rows["truth", "all", "all"]["n_slices"] == rows["none", "all", "all"]["n_slices"] == 128
    assert rows["identity", "dose", "low"]["ssim_pct_mean"] == rows["none", "dose", "low"]["ssim_pct_mean"]
    saved = json.loads((out / "truth_table.json").read_text())
    truth_all = next(r for r in saved["rows"] if r["method"] == "truth" and r["group_by"] == "all")
    assert truth_all["psnr_db_mean"] is None and saved["definitions"]["ssim_pct"].startswith("100 * mean")
    md = (out / "truth_table.md").read_text()
    assert "| metric | NH (none) | H: identity | H: truth | ComBat |" in md
    assert "| PSNR (dB) |" in md and "| \\|Δ\\|Lung mass (g) |" in md and "## Per kernel group" in md
    assert "ctharmonize truth-table --datalist" in saved["command"]


def test_combat_rows_match_a_direct_neurocombat_call_and_approach_the_truth(table, monkeypatch):
    neuro = pytest.importorskip("neuroCombat")
    import pandas as pd

    doc, out, slices, summary = table
    assert doc["combat"]["status"] == "ok" and doc["combat"]["ref_batch"] == "ground_truth"
    none = [r for r in slices if r["method"] == "none"]
    combat = {(r["image"], r["slice"]): r for r in slices if r["method"] == "combat"}
    assert len(combat) == len(none)
    truth = {}
    for r in none:  # one ground-truth sample per (subject, slice)
        truth[(r["subject"], r["slice"])] = (r["gt_laa950_pct"], r["gt_perc15_hu"])
    data = np.array([[r["laa950_pct"] for r in none] + [v[0] for v in truth.values()],
                     [r["perc15_hu"] for r in none] + [v[1] for v in truth.values()]])
    batches = [f"{r['rendition']} {r['dose']} dose" for r in none] + ["ground_truth"] * len(truth)
    monkeypatch.setattr(np, "int", int, raising=False)  # neuroCombat 0.2.12 still calls np.int
    adjusted = neuro.neuroCombat(dat=data, covars=pd.DataFrame({"b": batches}), batch_col="b",
                                 ref_batch="ground_truth")["data"]
    for k, r in enumerate(none):
        c = combat[r["image"], r["slice"]]
        assert (c["laa950_pct"], c["perc15_hu"]) == pytest.approx((adjusted[0, k], adjusted[1, k]), rel=1e-6)
        assert c["abs_dperc15_hu"] == pytest.approx(abs(adjusted[1, k] - r["gt_perc15_hu"]), rel=1e-6)
        assert math.isnan(c["ssim_pct"]) and math.isnan(c["abs_dmass_g"])
    rows = {(s["method"], s["group_by"], s["group"]): s for s in summary}
    for group in (("all", "all"), ("kernel_group", "sharp"), ("dose", "low")):
        for m in ("abs_dlaa950_pct", "abs_dperc15_hu"):
            assert rows[("combat", *group)][f"{m}_mean"] < 0.5 * rows[("none", *group)][f"{m}_mean"]


def test_clinical_datalist_has_no_kernel_groups(tmp_path):
    datalist = simulate(tmp_path / "clin", size=128, slices=4, preset="clinical")
    out = tmp_path / "tt"
    assert main(["truth-table", "--datalist", str(datalist), "--out", str(out), "--nophysics", "--noprogress"]) == 0
    doc = json.loads((out / "truth_table.json").read_text())
    groups = {(r["group_by"], r["group"]) for r in doc["rows"] if r["method"] == "none"}
    assert ("kernel_group", "n/a") in groups and ("dose", "n/a") in groups
    kernels = {e["kernel"] for e in datalist_entries(datalist, "test")[0]}
    assert {g for b, g in groups if b == "rendition_dose"} == kernels
    assert {r["method"] for r in doc["rows"]} == {"none", "combat"}


def test_harmonized_files_and_the_refusals(sim, tmp_path, capsys):
    two = subset(sim, "two.json", lambda e: e["rendition"] == "Br32f")  # Br32f low and high dose
    entries, _ = datalist_entries(two, "test")
    folder = tmp_path / "gt_files"
    folder.mkdir()
    with open(folder / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "subject", "input", "input_sha256", "output", "bundle", "bundle_version",
                    "source_kernel", "target_kernel", "seconds"])
        for i, e in enumerate(entries):
            shutil.copy(e["ground_truth"], folder / f"{i}.nii.gz")
            w.writerow([i, e["subject"], e["image"], "", f"{i}.nii.gz", "copy", "", e["kernel"], "ground_truth", 0])
    out = tmp_path / "tt"
    args = ["truth-table", "--datalist", str(two), "--out", str(out), "--nophysics", "--nocombat", "--noprogress"]
    assert main([*args, "--harmonized", f"copied={folder}"]) == 0
    rows = {(r["method"], r["group_by"], r["group"]): r for r in json.loads((out / "truth_table.json").read_text())["rows"]}
    assert rows["copied", "all", "all"]["ssim_pct_mean"] == pytest.approx(100.0)
    assert rows["copied", "all", "all"]["n_slices"] == rows["none", "all", "all"]["n_slices"] == 8
    capsys.readouterr()

    def refused(argv, *words):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        for w in words:
            assert w in err, err

    refused(args, "already exists")  # an earlier output is not replaced ...
    assert main([*args, "--overwrite"]) == 0  # ... unless --overwrite
    no_gt = subset(sim, "no_gt.json", lambda e: e["rendition"] == "Br32f")
    doc = json.loads(no_gt.read_text())
    del doc["data"][1]["ground_truth"]
    no_gt.write_text(json.dumps(doc))
    refused(["truth-table", "--datalist", str(no_gt), "--out", str(tmp_path / "x")], "no_gt.json", "'ground_truth'")
    bundle = REPO / "bundles" / "kernel_normalization_ct_harmonization"
    refused(["truth-table", "--datalist", str(two), "--out", str(tmp_path / "y"), "--bundles", str(bundle),
             "--device", "cpu"], str(bundle), "does not map to 'ground_truth'")
    (folder / "manifest.csv").write_text((folder / "manifest.csv").read_text().splitlines()[0] + "\n"
                                         + (folder / "manifest.csv").read_text().splitlines()[1] + "\n")
    refused(["truth-table", "--datalist", str(two), "--out", str(tmp_path / "z"), "--harmonized", str(folder)],
            "manifest.csv", "no harmonized image of")
    assert not any((tmp_path / n).exists() for n in "xyz")
    with pytest.raises(ConfigError, match="harmonizer 'kernels' does not map to 'ground_truth'"):
        run_truth_table(two, tmp_path / "w", harmonizers={"kernels": KernelToKernel()})
    assert not (tmp_path / "w").exists()


def test_detectability_and_nps_before_and_after(tmp_path):
    datalist = simulate(tmp_path / "sim512", size=512, slices=2)
    two = subset(datalist, "two.json", lambda e: e["rendition"] == "Br32f")
    entries, _ = datalist_entries(two, "test")
    out = tmp_path / "tt"
    doc = run_truth_table(two, out, harmonizers={"identity": Identity(["siemens_br32f"]), "truth": Truth(entries)},
                          combat=False, progress=False)
    rows = read_csv(out / "truth_table_physics.csv")
    by = {(r["method"], r["dose"]): r for r in rows}
    gt = by["ground_truth", "n/a"]
    assert gt["noise_sd_hu"] == 0 and math.isnan(gt["nps_peak_lp_cm"]) and gt["dprime_npwe"] > 100
    for dose in ("low", "high"):
        none, ident, truth = by["none", dose], by["identity", dose], by["truth", dose]
        assert none["status"] == "ok" and none["noise_sd_hu"] > 10 and 0 < none["dprime_npwe"] < 10
        assert all(ident[k] == none[k] for k in ("dprime_npwe", "noise_sd_hu", "nps_peak_lp_cm", "mtf50_lp_cm"))
        assert truth["noise_sd_hu"] == 0 and truth["dprime_npwe"] == pytest.approx(gt["dprime_npwe"])
    # more dose, less noise, higher d'
    assert by["none", "high"]["noise_sd_hu"] < by["none", "low"]["noise_sd_hu"]
    assert by["none", "high"]["dprime_npwe"] > by["none", "low"]["dprime_npwe"]
    phys = {(r["method"], r["group_by"], r["group"]): r for r in doc["physics"]}
    assert phys["none", "all", "all"]["n_volumes"] == 2 and ("ground_truth", "dose", "low") not in phys
    saved = json.loads((out / "truth_table.json").read_text())
    assert next(r for r in saved["physics"] if r["method"] == "ground_truth")["nps_peak_lp_cm_mean"] is None
    assert "## Detectability and noise" in (out / "truth_table.md").read_text()


def test_the_bundle_workflow(sim, tmp_path):
    """tools/truth_table.json: its target resolves and its "run" writes the table (in-process)."""
    from monai.bundle import ConfigParser

    two = subset(sim, "two_tools.json", lambda e: e["rendition"] == "Br32f")
    parser = ConfigParser()
    parser.read_config(REPO / "tools" / "truth_table.json")
    parser.read_meta(REPO / "tools" / "metadata.json")
    assert callable(parser.get_parsed_content("truth_table"))
    parser.update({"datalist": str(two), "output_dir": str(tmp_path / "tt"), "physics": False, "progress": False})
    parser.get_parsed_content("run")
    doc = json.loads((tmp_path / "tt" / "truth_table.json").read_text())
    assert [m["name"] for m in doc["methods"]] == ["none"] and doc["combat"]["status"] == "ok"


def test_slices_are_chosen_among_the_lung_slices():
    from ctharmonize.evaluation.truth_table import _lung_slices

    lung = np.zeros((10, 20, 20), bool)
    lung[2:9, :10, :10] = True  # 100 pixels on slices 2..8
    lung[0, :5, :5] = True  # 25: too few
    assert _lung_slices(lung, 3, 100) == [3, 5, 7]  # the centres of 3 equal blocks of slices 2..8
    assert _lung_slices(lung, 0, 100) == list(range(2, 9))
    assert _lung_slices(np.zeros((4, 8, 8), bool), 2, 100) == [1, 3]  # no lung: evenly through all slices
