"""``ctharmonize posthoc-dice`` (paper 004 Table V from files) on a tiny segmentation-renormalized bundle.

Expected values are computed by hand: the bundle's segmenters picked by name from the saved network, numpy
reflect-padding to 16 and [-2048, 3072] HU scaling, a torch forward, argmax; tissue codes mapped to classes with
a table written here; Dice per class and volume with plain numpy, mean and SD over volumes.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctharmonize.cli import main
from ctharmonize.io import read_volume
from ctharmonize.networks import SegRenormCycleGANPairs, SegRenormGenerator, TissueSegmenter

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "bundles"))
sys.path.insert(0, str(TESTS / "io"))
from corpus_harness import expect_refusal  # noqa: E402
from gan_bundle_runs import copy_bundle_with_weights  # noqa: E402
from tiny_bundle_config import write_cyclegan_bundle  # noqa: E402

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = TESTS.parent
BUNDLE = REPO / "bundles" / "segrenorm_cyclegan_ct_harmonization"
PAIRS = [["ge_bone", "siemens_b30f"], ["siemens_b50f", "siemens_b30f"]]
TINY = {"ngf": 4, "n_blocks": 1, "embed_dim": 8, "extractor_features": [4, 4, 4, 4], "seg_features": [4] * 6}
HU_MIN, HU_MAX = -2048.0, 3072.0
SOURCE, TARGET = "siemens_b50f", "siemens_b30f"
SLICES = 2
CLASSES = ["lungs", "airway", "skeletal_muscle", "fat", "bone", "mediastinum"]  # background left out
# tissue code -> class index (0 background, 1 lungs, ..., 6 mediastinum), written out here on purpose
CODE_TO_CLASS = {0: 0, 1: 1, 2: 1, 4: 1, 13: 1, 3: 2, 5: 3, 6: 4, 7: 4, 8: 5, 9: 6, 10: 6, 11: 6, 12: 6}


def _tiny_network(seed: int = 0) -> SegRenormCycleGANPairs:
    torch.manual_seed(seed)

    def generator() -> SegRenormGenerator:
        return SegRenormGenerator(ngf=TINY["ngf"], n_blocks=TINY["n_blocks"], embed_dim=TINY["embed_dim"],
                                  extractor_features=TINY["extractor_features"])

    return SegRenormCycleGANPairs(PAIRS, generator=generator,
                                  segmenter=lambda: TissueSegmenter(features=TINY["seg_features"])).eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from ctharmonize.simulation import generate_dataset

    root = tmp_path_factory.mktemp("posthoc")
    # 40 x 40: not a multiple of 16, so the segmenter input is padded; 2 subjects per vendor, all in 'test'
    datalist = generate_dataset(root / "sim", subjects=2, size=40, slices=4, seed=0, split="test", progress=False)
    net = _tiny_network()
    bundle = copy_bundle_with_weights(BUNDLE, root / "srn_bundle", TINY, net)
    doc = json.loads(datalist.read_text())
    sources = [e for e in doc["data"] if e["kernel"] == SOURCE]
    # method 1: ctharmonize harmonize-cohort of the source scans with the tiny bundle
    only_sources = datalist.parent / "sources.json"
    only_sources.write_text(json.dumps({**doc, "data": sources}))
    cohort = root / "cohort"
    assert main(["harmonize-cohort", "--datalist", str(only_sources), "--bundle", str(bundle), "--out", str(cohort),
                 "--target", TARGET, "--device", "cpu", "--trust_bundle", "--noprogress"]) == 0
    # method 2: the source scans themselves, in harmonize-cohort's output layout (so its row is the lower bound)
    identity = root / "identity"
    identity.mkdir()
    with open(identity / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "subject", "input", "output", "source_kernel", "target_kernel"])
        for i, e in enumerate(sources):
            name = f"{i}_{e['subject']}_{SOURCE}_to_{TARGET}.nii.gz"
            shutil.copy(datalist.parent / e["image"], identity / name)
            writer.writerow([i, e["subject"], str(datalist.parent / e["image"]), name, SOURCE, TARGET])
    out = root / "table"
    args = ["posthoc-dice", "--bundle", str(bundle), "--datalist", str(datalist), "--source", SOURCE, "--target",
            TARGET, "--out", str(out), "--harmonized", f"SegRenorm={cohort},Identity={identity / 'manifest.csv'}",
            "--slices", str(SLICES), "--device", "cpu", "--batch_size", "3", "--trust_bundle", "--noprogress"]
    assert main(args) == 0
    return {"root": root, "datalist": datalist, "bundle": bundle, "net": net, "cohort": cohort,
            "identity": identity, "out": out, "args": args, "sources": sources,
            "targets": [e for e in doc["data"] if e["kernel"] == TARGET]}


def _by_hand_classes(segmenter: torch.nn.Module, hu: np.ndarray) -> np.ndarray:
    pad = ((0, (-hu.shape[1]) % 16), (0, (-hu.shape[2]) % 16))
    half = (HU_MAX - HU_MIN) / 2.0
    out = []
    for k in range(hu.shape[0]):
        x = (np.clip(np.pad(hu[k].astype(np.float64), pad, mode="reflect"), HU_MIN, HU_MAX) - HU_MIN) / half - 1.0
        with torch.no_grad():
            logits = segmenter.eval()(torch.from_numpy(x).float()[None, None]).numpy()[0]
        out.append(np.argmax(logits, axis=0)[: hu.shape[1], : hu.shape[2]])
    return np.stack(out)


def _by_hand_dice(prediction: np.ndarray, reference: np.ndarray) -> list[float]:
    dices = []
    for c in range(1, 7):
        p, r = prediction == c, reference == c
        total = p.sum() + r.sum()
        dices.append(math.nan if total == 0 else 2.0 * np.logical_and(p, r).sum() / total)
    return dices


def _expected(setup, segmenter, entries, images=None) -> np.ndarray:
    """(volumes, classes) Dice of ``segmenter`` on ``images`` (default the entries' own) vs the entries' labels."""
    folder = setup["datalist"].parent
    rows = []
    for n, e in enumerate(entries):
        hu = read_volume(images[n] if images else folder / e["image"]).array
        codes = np.rint(read_volume(folder / e["labels"]).array).astype(int)
        picked = [int((k + 0.5) * hu.shape[0] / SLICES) for k in range(SLICES)]  # [1, 3] of 4 slices
        reference = np.vectorize(CODE_TO_CLASS.get)(codes[picked])
        rows.append(_by_hand_dice(_by_hand_classes(segmenter, hu[picked]), reference))
    return np.asarray(rows, dtype=float)


def _mean_sd(column: np.ndarray) -> tuple[float, float]:
    v = column[~np.isnan(column)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def _close(got: str | float | None, want: float) -> bool:
    if math.isnan(want):
        return got in ("", None)
    return got not in ("", None) and float(got) == pytest.approx(want, abs=1e-12)


def test_table_v_rows_match_a_by_hand_computation(setup):
    out = setup["out"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "posthoc_dice.csv", "posthoc_dice.json", "posthoc_dice.md"]
    pair = setup["net"].pairs["siemens_b50f__siemens_b30f"]
    s_source, s_target = pair.S_A, pair.S_B  # b50f is the pair's domain A, b30f its B
    cohort_rows = {r["subject"]: r["output"] for r in csv.DictReader((setup["cohort"] / "manifest.csv").open())}
    harmonized = [setup["cohort"] / cohort_rows[e["subject"]] for e in setup["sources"]]
    expected = {
        "Source Segmentor → Source Image": _expected(setup, s_source, setup["sources"]),
        "Target Segmentor → Target Image": _expected(setup, s_target, setup["targets"]),
        "Target Segmentor → Source Image": _expected(setup, s_target, setup["sources"]),
        "Target Segmentor → Harmonized Image (SegRenorm)": _expected(setup, s_target, setup["sources"], harmonized),
        "Target Segmentor → Harmonized Image (Identity)": _expected(setup, s_target, setup["sources"]),
    }
    # the source and target segmenters disagree on these scans, so the rows tell them apart
    assert not np.allclose(expected["Source Segmentor → Source Image"], expected["Target Segmentor → Source Image"],
                           equal_nan=True)
    assert not np.allclose(expected["Target Segmentor → Harmonized Image (SegRenorm)"],
                           expected["Target Segmentor → Source Image"], equal_nan=True)
    rows = list(csv.DictReader((out / "posthoc_dice.csv").open(encoding="utf-8")))
    assert [r["row"] for r in rows[:: len(CLASSES)]] == list(expected)
    assert [r["role"] for r in rows[:: len(CLASSES)]] == ["source reference", "upper bound", "lower bound",
                                                          "harmonized", "harmonized"]
    doc = json.loads((out / "posthoc_dice.json").read_text(encoding="utf-8"))
    by_label = {r["label"]: r for r in doc["rows"]}
    for label, table in expected.items():
        assert table.shape == (2, 6)
        mine = [r for r in rows if r["row"] == label]
        assert [r["class"] for r in mine] == CLASSES
        for c, (name, r) in enumerate(zip(CLASSES, mine, strict=True)):
            mean, sd = _mean_sd(table[:, c])
            assert _close(r["dice"], mean) and _close(r["dice_sd"], sd), (label, name, r, table[:, c])
            assert int(r["n"]) == int((~np.isnan(table[:, c])).sum())
            scores = by_label[label]["scores"][name]
            assert _close(scores["dice"], mean) and _close(scores["dice_sd"], sd)
            per_case = [case["dice"][name] for case in by_label[label]["cases"]]
            assert all(_close(g, w) for g, w in zip(per_case, table[:, c], strict=True))
        assert [case["slices"] for case in by_label[label]["cases"]] == [[1, 3], [1, 3]]
    assert doc["bundle"]["segmenters"] == {"source": "pairs.siemens_b50f__siemens_b30f.S_A",
                                           "target": "pairs.siemens_b50f__siemens_b30f.S_B"}
    assert doc["settings"]["hu_window"] == [HU_MIN, HU_MAX] and doc["settings"]["slices_per_volume"] == SLICES
    assert doc["n_source_scans"] == doc["n_target_scans"] == 2
    assert doc["harmonized"] == {"SegRenorm": str(setup["cohort"]),
                                 "Identity": str(setup["identity"] / "manifest.csv")}
    md = (out / "posthoc_dice.md").read_text(encoding="utf-8")
    assert doc["command"].startswith("ctharmonize posthoc-dice --bundle ") and doc["command"] in md
    assert f"Datalist `{setup['datalist']}`" in md and "ctharmonize-simulated" in md
    assert all(f"| {label} |" in md for label in expected) and "± " in md


def test_overwrite_and_the_bound_rows_only(setup, tmp_path):
    out = tmp_path / "bounds"
    args = list(setup["args"])
    i = args.index("--harmonized")
    del args[i:i + 2]
    args[args.index("--out") + 1] = str(out)
    assert main(args) == 0
    assert main([*args, "--overwrite"]) == 0
    doc = json.loads((out / "posthoc_dice.json").read_text(encoding="utf-8"))
    assert [r["role"] for r in doc["rows"]] == ["source reference", "upper bound", "lower bound"]
    first = json.loads((setup["out"] / "posthoc_dice.json").read_text(encoding="utf-8"))
    assert doc["rows"] == first["rows"][:3]


def test_refusals_are_one_line_exit_2_and_write_nothing(setup, tmp_path, capsys):
    root, datalist = setup["root"], setup["datalist"]
    fresh = tmp_path / "o"

    def refused(*must, **changes) -> str:
        args = list(setup["args"])
        args[args.index("--out") + 1] = str(fresh)
        for flag, value in changes.items():
            args[args.index(f"--{flag}") + 1] = str(value)
        return expect_refusal(capsys, args, "ctharmonize posthoc-dice: error:", *must, watch=root, absent=[fresh])

    expect_refusal(capsys, setup["args"], "already exists", watch=root)  # --out exists, no --overwrite
    refused(str(tmp_path / "none.json"), datalist=tmp_path / "none.json")
    doc = json.loads(datalist.read_text())
    unlabelled = datalist.parent / "no_labels.json"
    unlabelled.write_text(json.dumps({**doc, "data": [{k: v for k, v in e.items() if k != "labels"}
                                                      for e in doc["data"]]}))
    refused(str(unlabelled), "no 'labels' map", datalist=unlabelled)
    cyclegan = write_cyclegan_bundle(tmp_path / "cyclegan", [SOURCE, TARGET], TARGET)
    refused(str(cyclegan / "configs" / "inference.json"), "no per-domain segmenters", bundle=cyclegan)
    line = refused(str(setup["bundle"] / "configs" / "inference.json"), "no segmenter of 'ge_standard'",
                   source="ge_standard")
    assert "--source ge_standard" in line
    # a method whose manifest lacks one of the source scans
    partial = tmp_path / "partial"
    shutil.copytree(setup["identity"], partial)
    lines = (partial / "manifest.csv").read_text().splitlines()
    (partial / "manifest.csv").write_text("\n".join(lines[:-1]) + "\n")
    missing = setup["sources"][-1]
    refused(str(partial / "manifest.csv"), "no harmonized siemens_b50f->siemens_b30f image of",
            str(datalist.parent / missing["image"]), "'Identity'", harmonized=f"Identity={partial}")
    (tmp_path / "bare").mkdir()
    refused(str(tmp_path / "bare"), "manifest.csv", harmonized=f"Bare={tmp_path / 'bare'}")  # no manifest there
    refused("siemens_b99f", source="siemens_b99f")
    refused("--slices", slices=0)
    assert not fresh.exists()
