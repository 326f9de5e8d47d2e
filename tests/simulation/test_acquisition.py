"""Per-subject acquisition draws and the ``clinical`` dataset preset."""

import json

import numpy as np
import pytest

from ctharmonize.cli import main
from ctharmonize.data import load_datalist
from ctharmonize.errors import ConfigError
from ctharmonize.io import read_volume
from ctharmonize.simulation import VENDORS, generate_dataset, generate_phantom, simulate_scan
from ctharmonize.simulation.dataset import PRESETS, Acquisition, draw_acquisition


def test_draws_lie_in_the_vendor_ranges():
    for spec in VENDORS.values():
        rng = np.random.default_rng(11)
        draws = [draw_acquisition(spec, rng) for _ in range(200)]
        for a in draws:
            assert spec.fov_range_mm[0] <= a.fov_mm <= spec.fov_range_mm[1]
            assert spec.mas_range[0] <= a.mas <= spec.mas_range[1]
            assert a.slice_thickness_mm in spec.thickness_options_mm
            assert 0.88 <= a.body_scale <= 1.18
            assert np.hypot(*np.subtract(a.fov_center_mm, spec.fov_center_mm)) < 25.0  # 4 mm SD per axis
            assert a.ctdivol_mgy == pytest.approx(a.mas * spec.ctdivol_per_mas, abs=1e-3)
            assert a.ctdivol_mgy == pytest.approx(spec.ctdivol(a.mas), abs=1e-3)
        fov = np.array([a.fov_mm for a in draws])
        mas = np.array([a.mas for a in draws])
        # the ranges are used, not a corner of them; the FOV follows the patient's size
        assert np.ptp(fov) > 0.6 * np.ptp(spec.fov_range_mm) and np.ptp(mas) > 0.8 * np.ptp(spec.mas_range)
        assert {a.slice_thickness_mm for a in draws} == set(spec.thickness_options_mm)
        assert np.corrcoef(fov, [a.body_scale for a in draws])[0, 1] > 0.5
        # log-uniform mAs: the geometric mean of the range is the median
        assert abs(np.median(mas) / np.sqrt(np.prod(spec.mas_range)) - 1.0) < 0.12


def test_draws_reproducible_and_defaults_without_rng():
    spec = VENDORS["ge"]
    assert draw_acquisition(spec, np.random.default_rng([3, 1, 0, 1])) == draw_acquisition(
        spec, np.random.default_rng([3, 1, 0, 1]))
    subjects = {draw_acquisition(spec, np.random.default_rng([3, 1, i, 1])) for i in range(10)}
    assert len(subjects) == 10 and len({a.fov_mm for a in subjects}) > 5
    for spec in VENDORS.values():
        d = draw_acquisition(spec, None)
        assert d == Acquisition(spec.recon_fov_mm, tuple(spec.fov_center_mm), spec.default_mas,
                                round(spec.default_mas * spec.ctdivol_per_mas, 3), spec.slice_thickness_mm, 1.0)


@pytest.fixture(scope="module")
def clinical(tmp_path_factory):
    out = tmp_path_factory.mktemp("clin") / "ds"
    path = generate_dataset(out, preset="clinical", size=64, slices=2, subjects=3, seed=1, progress=False)
    return out, path, json.loads(path.read_text())


def test_clinical_dataset_spacing_follows_the_drawn_fov(clinical):
    out, path, doc = clinical
    assert len(load_datalist(path)) == 12 and "preset clinical" in doc["description"]
    assert main(["validate-datalist", str(path)]) == 0
    for vendor, spec in VENDORS.items():
        entries = [e for e in doc["data"] if e["vendor"] == vendor]
        by_subject = {}
        for e in entries:
            acq = e["acquisition"]
            vol = read_volume(out / e["image"])
            assert vol.shape == (2, 64, 64)
            assert acq["pixel_spacing_mm"] == pytest.approx(acq["fov_mm"] / 64, abs=1e-4)
            np.testing.assert_allclose(vol.spacing, (acq["pixel_spacing_mm"],) * 2 + (acq["slice_thickness_mm"],),
                                       atol=1e-4)
            assert acq["ctdivol_mgy"] == pytest.approx(acq["mas"] * spec.ctdivol_per_mas, abs=1e-3)
            assert spec.fov_range_mm[0] <= acq["fov_mm"] <= spec.fov_range_mm[1]
            by_subject.setdefault(e["subject"], []).append(acq)
        assert len(by_subject) == 3
        for pair in by_subject.values():  # the two kernels of a subject: one acquisition
            assert {k: v for k, v in pair[0].items() if k != "processing"} == \
                   {k: v for k, v in pair[1].items() if k != "processing"}
        assert len({p[0]["pixel_spacing_mm"] for p in by_subject.values()}) == 3


def test_clinical_acquisition_agrees_with_the_scan_header(clinical):
    _, _, doc = clinical
    for vendor in VENDORS:
        entries = [e for e in doc["data"] if e["vendor"] == vendor]
        acq = entries[0]["acquisition"]
        ph = generate_phantom(seed=0, size=64, slices=2, fov_mm=acq["fov_mm"], fov_center_mm=acq["fov_center_mm"],
                              slice_thickness=acq["slice_thickness_mm"], body_scale=acq["body_scale"])
        vols = simulate_scan(ph, vendor, mas=acq["mas"], ir_strength=1.0, edge_strength=1.0)
        for e in (x for x in entries if x["subject"] == entries[0]["subject"]):
            vol = vols[e["kernel"]]
            assert vol.header.extra["ctdivol_mgy"] == pytest.approx(e["acquisition"]["ctdivol_mgy"], abs=1e-3)
            assert vol.header.extra["processing"] == e["acquisition"]["processing"] != "FBP"
            assert vol.header.exposure_mas == e["acquisition"]["mas"]
            assert vol.spacing[0] == pytest.approx(e["acquisition"]["pixel_spacing_mm"], abs=1e-4)


def test_cli_preset_overrides_and_split(tmp_path):
    out = tmp_path / "held_out"
    rc = main(["simulate", "--out", str(out), "--preset", "clinical", "--size", "32", "--slices", "1",
               "--subjects", "3", "--vendors", "ge", "--ir_strength", "0", "--split", "test", "--progress", "False"])
    assert rc == 0
    doc = json.loads((out / "datalist.json").read_text())
    assert len(doc["data"]) == 6 and {e["split"] for e in doc["data"]} == {"test"}
    labels = {e["kernel"]: e["acquisition"]["processing"] for e in doc["data"]}
    assert labels == {"ge_standard": "FBP", "ge_bone": "edge enhancement"}
    assert len({e["acquisition"]["fov_mm"] for e in doc["data"]}) == 3  # vary=True from the preset


def test_unknown_preset_is_refused_before_writing(tmp_path, capsys):
    assert set(PRESETS) >= {"clinical", "basic"}
    with pytest.raises(ConfigError, match="unknown simulation preset"):
        generate_dataset(tmp_path / "x", preset="nlst", size=32, slices=1, progress=False)
    assert not (tmp_path / "x").exists()
    assert main(["simulate", "--out", str(tmp_path / "y"), "--preset", "nlst"]) == 2
    assert "unknown simulation preset" in capsys.readouterr().err and not (tmp_path / "y").exists()
