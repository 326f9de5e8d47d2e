"""Two-way FID / KID (paper 003 Table I form): directions, the sampled slices, the mean of both directions, "none" and
unsupported kernels, against a scipy ``sqrtm`` Fréchet distance computed here; the CLI and its refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from ctharmonize.cli import main
from ctharmonize.data import datalist_entries
from ctharmonize.evaluation.benchmark_distribution import SliceEmbedder, sampled_slices
from ctharmonize.evaluation.two_way_fid import parse_pairs, two_way_rows
from ctharmonize.io import read_volume

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
from multipath_sim_data import write_test_split  # noqa: E402


class Offset:
    """A slice-wise harmonizer that adds ``shift`` HU times the target's index (records the slices it sees)."""

    def __init__(self, domains, shift: float):
        self.domains, self.shift, self.seen = tuple(domains), float(shift), []

    def __call__(self, hu, source, target, fov_mask=None):
        self.seen.append(hu.shape[0])
        return hu + self.shift * (1 + self.domains.index(target))


def frechet_scipy(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    return write_test_split(tmp_path_factory.mktemp("twfid"), subjects_per_vendor=3, size=48, slices=12)


def test_rows_against_a_direct_computation(sim):
    entries, _ = datalist_entries(sim, "test")
    scans = {}
    for e in entries:
        scans.setdefault(e["kernel"], []).append(read_volume(e["image"]))
    embed = SliceEmbedder(4)
    offset = Offset(["siemens_b50f", "siemens_b30f"], 40.0)
    rows = two_way_rows([("none", None), ("offset", offset)], scans,
                        [("siemens_b50f", "siemens_b30f"), ("ge_bone", "siemens_b30f")], embed)
    by = {(r["method"], r["pair"]): r for r in rows}
    assert len(rows) == 4

    def emb(volumes, fn=lambda hu: hu):
        return np.concatenate([embed(fn(v.array)) for v in volumes])

    b50f, b30f = scans["siemens_b50f"], scans["siemens_b30f"]
    none = by["none", "siemens_b50f<->siemens_b30f"]
    want = frechet_scipy(emb(b30f), emb(b50f))
    assert none["fid_ab"] == pytest.approx(want, rel=1e-4) and none["fid_ba"] == pytest.approx(want, rel=1e-4)
    # a -> b: the harmonized B50f (+80 HU: target index 1) against the real B30f; b -> a: B30f + 40 HU against B50f
    row = by["offset", "siemens_b50f<->siemens_b30f"]
    ab = frechet_scipy(emb(b30f), emb(b50f, lambda hu: hu + 80.0))
    ba = frechet_scipy(emb(b50f), emb(b30f, lambda hu: hu + 40.0))
    assert row["fid_ab"] == pytest.approx(ab, rel=1e-4) and row["fid_ba"] == pytest.approx(ba, rel=1e-4)
    assert row["fid"] == pytest.approx((ab + ba) / 2, rel=1e-4) and abs(ab - ba) > 1e-3
    assert np.isfinite(row["kid"]) and row["status"] == "ok"
    # only the sampled slices are harmonized (4 of 12 per scan)
    assert set(offset.seen) == {len(sampled_slices(12, 4))} == {4}
    # a harmonizer without GE BONE: not supported, no values
    missing = by["offset", "ge_bone<->siemens_b30f"]
    assert missing["status"] == "not supported" and np.isnan(missing["fid"])


def test_parse_pairs_and_the_cli_refusals(sim, tmp_path, capsys):
    assert parse_pairs("ge_bone:ge_standard, siemens_b50f:siemens_b30f") == [("ge_bone", "ge_standard"),
                                                                            ("siemens_b50f", "siemens_b30f")]
    assert len(parse_pairs(None)) == 4
    out = tmp_path / "fid"
    assert main(["two-way-fid", "--bundles", "", "--datalist", str(sim), "--out", str(out), "--pairs",
                 "siemens_b50f:siemens_b30f", "--slices", "2", "--device", "cpu"]) == 0
    doc = json.loads((out / "two_way_fid.json").read_text())
    assert [r["method"] for r in doc["rows"]][0] == "none" and len(doc["rows"]) == 2  # none and the baseline
    assert "| none |" in (out / "two_way_fid.md").read_text()
    capsys.readouterr()
    for args in (["--pairs", "ge_bone"], []):  # a malformed pair; an output that exists
        assert main(["two-way-fid", "--bundles", "", "--datalist", str(sim), "--out", str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err


class TinyInception(torch.nn.Module):
    """A stand-in for a user's Inception file: (B, 3, H, W) → (B, 6) pooled features (random weights)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 5, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def test_standard_fid_with_a_users_inception_file(sim, tmp_path):
    """--inception PATH: the slices go through the user's network (InceptionFeatures adapter: [0, 1], 3 channels,
    299², ImageNet normalisation) instead of the CT feature network; checked against the adapter applied here."""
    from ctharmonize.metrics import load_inception_features

    torch.manual_seed(0)
    path = tmp_path / "inception.pt"
    torch.jit.script(TinyInception().eval()).save(str(path))
    out = tmp_path / "fid"
    assert main(["two-way-fid", "--bundles", "", "--baseline", "", "--datalist", str(sim), "--out", str(out),
                 "--pairs", "siemens_b50f:siemens_b30f", "--slices", "3", "--device", "cpu",
                 "--inception", str(path)]) == 0
    doc = json.loads((out / "two_way_fid.json").read_text())
    assert "inception.pt" in doc["feature_network"] and len(doc["rows"]) == 1
    net = load_inception_features(path)
    entries, _ = datalist_entries(sim, "test")

    def emb(kernel):
        rows = []
        for e in entries:
            if e["kernel"] == kernel:
                hu = read_volume(e["image"]).array
                x = (np.clip(hu[sampled_slices(hu.shape[0], 3)], -1024, 3072) + 1024) / 2048 - 1
                with torch.no_grad():
                    rows.append(net(torch.from_numpy(x.astype(np.float32))[:, None]).double().numpy())
        return np.concatenate(rows)

    want = frechet_scipy(emb("siemens_b30f"), emb("siemens_b50f"))
    assert doc["rows"][0]["fid"] == pytest.approx(want, rel=1e-3)
