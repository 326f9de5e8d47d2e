"""Self-adversarial sensitivity with tiny harmonizers built here, and ``ctharmonize sensitivity`` end to end.

Expected values are recomputed here with numpy / scipy / scikit-image, not with the module's helpers (except
its documented noise field, which both sides must share).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from ctharmonize.cli import main
from ctharmonize.errors import ConfigError, PixelSpacingError
from ctharmonize.evaluation.sensitivity import (
    DEFAULT_SIGMAS,
    SliceStack,
    harmonizer_window,
    noise_field,
    sensitivity_curve,
    sigma_to_hu,
)
from ctharmonize.evaluation.sensitivity_plots import sensitivity_plot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
from tiny_bundle_config import write_cyclegan_bundle  # noqa: E402

WINDOW = (-1024.0, 3072.0)
HALF = (WINDOW[1] - WINDOW[0]) / 2  # HU per [-1, 1] unit
DOMAINS = ("siemens_b50f", "siemens_b30f")


class Identity:
    """H(x) = x clipped to the window, as a SliceHarmonizer clips; exposes its window."""

    domains = DOMAINS
    hu_min, hu_max = WINDOW

    def __call__(self, volume_hu, source, target, fov_mask=None):
        return np.clip(np.asarray(volume_hu, np.float32), *WINDOW)


class Blur:
    """A fixed in-plane Gaussian blur (2 px); no hu_min/hu_max (the window is passed)."""

    domains = DOMAINS

    def __call__(self, volume_hu, source, target, fov_mask=None):
        return gaussian_filter(np.clip(np.asarray(volume_hu, np.float32), *WINDOW), (0, 2, 2))


class Shift:
    """source -> target adds 100 HU, target -> source subtracts it: an exact cycle."""

    domains = DOMAINS
    hu_min, hu_max = WINDOW

    def __call__(self, volume_hu, source, target, fov_mask=None):
        step = 100.0 if (source, target) == DOMAINS else -100.0
        return np.clip(np.asarray(volume_hu, np.float32) + step, *WINDOW)


def mid_window_slices(seed=0, n=3, size=40):
    """(n, size, size) HU around 1024 HU, the middle of the window ([-1, 1] value 0), ±100 HU structure."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    base = 1024.0 + 100.0 * np.sin(yy / 4.0) * np.cos(xx / 5.0)
    return (base + rng.normal(0, 10, size=(n, size, size))).astype(np.float32)


def unit(hu):
    return np.clip((np.asarray(hu, np.float64) - WINDOW[0]) / HALF - 1.0, -1.0, 1.0)


def test_sigma_conversion_and_window():
    assert sigma_to_hu(0.05, WINDOW) == pytest.approx(102.4)
    assert sigma_to_hu(0.5, WINDOW) == pytest.approx(1024.0)
    assert DEFAULT_SIGMAS == pytest.approx([0.05 * i for i in range(11)])
    assert harmonizer_window(Identity()) == WINDOW
    assert harmonizer_window(Identity(), [-1024, 3072]) == WINDOW
    assert harmonizer_window(Blur(), (-1000, 1000)) == (-1000.0, 1000.0)
    with pytest.raises(ConfigError, match="hu_min/hu_max"):
        harmonizer_window(Blur())
    with pytest.raises(ConfigError, match="differs"):
        harmonizer_window(Identity(), (-1000, 1000))


def test_identity_mse_is_sigma_squared_and_ssim_decreases():
    x = mid_window_slices()
    curve = sensitivity_curve(Identity(), x, *DOMAINS, seed=3)
    assert curve.mse.shape == curve.ssim.shape == (11, 3)
    assert np.all(curve.mse[0] == 0) and np.allclose(curve.ssim[0], 1.0)
    z = np.random.default_rng([3, 0]).standard_normal(x.shape)  # the documented noise: one field per stack
    assert np.array_equal(noise_field(x.shape, 3, 0), z)
    mean_z2 = (z ** 2).mean(axis=(1, 2))
    for k, sigma in enumerate(curve.sigmas):
        noisy = unit(x + sigma * HALF * z)
        expected = ((noisy - unit(x)) ** 2).mean(axis=(1, 2))  # clipping at the window edges included
        assert np.allclose(curve.mse[k], expected, rtol=1e-6, atol=1e-12)
        ssim = [structural_similarity(unit(x)[i], noisy[i], data_range=2.0) for i in range(3)]
        assert np.allclose(curve.ssim[k], ssim, atol=1e-6)
        if 0 < sigma <= 0.25:  # |x| <= 0.06, |z| < 4: no clipping, so exactly sigma² mean(z²), ≈ sigma²
            assert np.allclose(curve.mse[k], sigma ** 2 * mean_z2, rtol=1e-5)
            assert curve.mse[k].mean() == pytest.approx(sigma ** 2, rel=0.05)
    assert np.all(np.diff(curve.ssim.mean(axis=1)) < 0)
    rows = curve.summary()
    assert [r["sigma_hu"] for r in rows] == pytest.approx([s * HALF for s in DEFAULT_SIGMAS])
    assert rows[4]["mse_mean"] == pytest.approx(curve.mse[4].mean())
    assert rows[4]["mse_sd"] == pytest.approx(np.std(curve.mse[4], ddof=1))


def test_blur_is_less_sensitive_than_identity_at_every_sigma():
    x = mid_window_slices(1)
    ident = sensitivity_curve(Identity(), x, *DOMAINS, seed=0)
    blur = sensitivity_curve(Blur(), x, *DOMAINS, seed=0, window=WINDOW)
    assert blur.window == WINDOW
    assert np.all(blur.mse[1:].mean(axis=1) < ident.mse[1:].mean(axis=1))
    assert np.all(blur.ssim[1:].mean(axis=1) > ident.ssim[1:].mean(axis=1))


def test_cycle_mode_is_the_papers_reconstruction_form():
    x = mid_window_slices(2)
    sigmas = (0.0, 0.1, 0.3)
    # identity both ways: F(G(x) + e) - x = e, as in output mode
    out = sensitivity_curve(Identity(), x, *DOMAINS, sigmas, seed=5)
    cyc = sensitivity_curve(Identity(), x, *DOMAINS, sigmas, seed=5, mode="cycle")
    assert np.allclose(cyc.mse, out.mse) and np.allclose(cyc.ssim, out.ssim)
    # an exact cycle: F(G(x)) = x at sigma 0; noise lands on G(x) = x + 100 HU
    shift = sensitivity_curve(Shift(), x, *DOMAINS, sigmas, seed=5, mode="cycle")
    assert np.allclose(shift.mse[0], 0.0, atol=1e-12)
    z = noise_field(x.shape, 5, 0)
    expected = ((unit(x + 100.0 + 0.3 * HALF * z - 100.0) - unit(x)) ** 2).mean(axis=(1, 2))
    assert np.allclose(shift.mse[2], expected, rtol=1e-5)
    with pytest.raises(ConfigError, match="mode"):
        sensitivity_curve(Identity(), x, *DOMAINS, mode="steganography")


def test_stacks_seed_and_spacing_policy(tmp_path):
    from ctharmonize.inference.spacing_policy import attach_spacing_policy

    a, b = mid_window_slices(3, n=2), mid_window_slices(4, n=1)
    sigmas = (0.0, 0.2)
    both = sensitivity_curve(Identity(), [a, SliceStack(b)], *DOMAINS, sigmas, seed=1)
    assert both.mse.shape == (2, 3)
    first = sensitivity_curve(Identity(), a, *DOMAINS, sigmas, seed=1)
    assert np.array_equal(both.mse[:, :2], first.mse)  # stack 0's noise does not depend on later stacks
    again = sensitivity_curve(Identity(), [a, b], *DOMAINS, sigmas, seed=1)
    other = sensitivity_curve(Identity(), [a, b], *DOMAINS, sigmas, seed=2)
    assert np.array_equal(again.mse, both.mse) and not np.array_equal(other.mse[1], both.mse[1])
    with pytest.raises(ConfigError, match="sigmas"):
        sensitivity_curve(Identity(), a, *DOMAINS, (0.1, -0.1))
    refusing = attach_spacing_policy(Identity(), {"trained_pixel_spacing_mm": [0.6, 0.8]}, "refuse")
    with pytest.raises(PixelSpacingError, match="scan.nii.gz"):
        sensitivity_curve(refusing, SliceStack(a, (2.0, 2.0, 2.0), "scan.nii.gz"), *DOMAINS, sigmas)
    fine = sensitivity_curve(refusing, SliceStack(a, (0.7, 0.7, 2.0), "scan.nii.gz"), *DOMAINS, sigmas, seed=1)
    assert np.array_equal(fine.mse, first.mse)
    png = sensitivity_plot({"identity": both, "blur": sensitivity_curve(Blur(), a, *DOMAINS, sigmas,
                                                                        window=WINDOW)}, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from ctharmonize.datasets import ensure_simulated_dataset

    root = tmp_path_factory.mktemp("sensitivity")
    datalist = ensure_simulated_dataset(root / "sim", subjects=2, size=48, slices=2, seed=0, progress=False)
    bundles = [write_cyclegan_bundle(root / f"tiny_{s}", list(DOMAINS), DOMAINS[1], seed=s) for s in (0, 1)]
    out = root / "sens"
    args = ["sensitivity", "--bundles", ",".join(map(str, bundles)), "--datalist", str(datalist), "--source",
            DOMAINS[0], "--target", DOMAINS[1], "--out", str(out), "--sigmas", "0,0.1,0.3", "--slices", "1",
            "--seed", "4", "--trust_bundle", "--device", "cpu", "--noprogress"]
    assert main(args) == 0
    return {"datalist": datalist, "bundles": bundles, "out": out, "args": args}


def test_cli_writes_csv_json_png_and_matches_a_direct_computation(setup):
    from ctharmonize.inference import load_bundle_harmonizer
    from ctharmonize.io import read_volume

    out = setup["out"]
    for name in ("sensitivity.csv", "sensitivity.json", "sensitivity.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "sensitivity.csv").open(encoding="utf-8")))
    doc = json.loads((out / "sensitivity.json").read_text(encoding="utf-8"))
    assert len(rows) == 2 * 3 and len(doc["methods"]) == 2
    assert len({r["method"] for r in rows}) == 2  # the two same-named bundles are told apart
    assert [float(r["sigma"]) for r in rows[:3]] == [0.0, 0.1, 0.3]
    assert float(rows[1]["sigma_hu"]) == pytest.approx(204.8)
    assert doc["source"] == DOMAINS[0] and doc["mode"] == "output" and doc["sigmas"] == [0.0, 0.1, 0.3]
    assert "ctharmonize sensitivity" in doc["command"]
    entries = [e for e in json.loads(setup["datalist"].read_text())["data"]
               if e["kernel"] == DOMAINS[0] and e["split"] == "test"]
    assert doc["n_volumes"] == len(entries) == 1 and doc["n_slices"] == 1
    assert doc["slices"][0]["slices"] == [1]  # the centre of a 2-slice volume
    # the second bundle's sigma = 0.3 row, recomputed by hand
    volume = read_volume(setup["datalist"].parent / entries[0]["image"])
    x = volume.array[[1]].astype(np.float32)
    harmonizer = load_bundle_harmonizer(setup["bundles"][1], device="cpu", trust=True)
    z = np.random.default_rng([4, 0]).standard_normal(x.shape)
    clean = unit(harmonizer(x, *DOMAINS))
    noisy = unit(harmonizer((x + 0.3 * HALF * z).astype(np.float32), *DOMAINS))
    row = rows[5]
    assert row["bundle"] == str(setup["bundles"][1])
    assert float(row["mse_mean"]) == pytest.approx(((noisy - clean) ** 2).mean(), rel=1e-4)
    assert float(row["ssim_mean"]) == pytest.approx(structural_similarity(clean[0], noisy[0], data_range=2.0),
                                                    abs=1e-4)
    assert float(rows[3]["mse_mean"]) == 0.0 and float(rows[3]["ssim_mean"]) == pytest.approx(1.0)


def test_cli_refuses_bad_source_existing_out_and_unknown_path_with_one_line(setup, tmp_path, capsys):
    args = setup["args"]
    before = sorted(p.name for p in setup["out"].iterdir())
    capsys.readouterr()
    assert main(args) == 2  # --out exists
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--overwrite" in err
    assert sorted(p.name for p in setup["out"].iterdir()) == before

    def refused(**changes) -> str:
        new = list(args)
        for flag, value in changes.items():
            new[new.index(f"--{flag}") + 1] = value
        assert main(new) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    fresh = str(tmp_path / "o")
    assert "siemens_b99f" in refused(source="siemens_b99f", out=fresh)  # not a kernel domain
    err = refused(source="ge_bone", out=fresh)  # a domain the bundles do not know
    assert "ge_bone" in err and str(setup["bundles"][0]) in err
    assert "sigmas" in refused(sigmas="0,-0.1", out=fresh)
    assert "siemens_b70f" in refused(source="siemens_b70f", out=fresh)  # no such scans in the split
    assert not Path(fresh).exists()


def test_cli_overwrite_and_cycle_mode(setup, tmp_path):
    out = tmp_path / "cycle"
    args = [*setup["args"], "--mode", "cycle"]
    args[args.index("--out") + 1] = str(out)
    assert main(args) == 0
    assert main([*args, "--overwrite"]) == 0
    doc = json.loads((out / "sensitivity.json").read_text(encoding="utf-8"))
    assert doc["mode"] == "cycle"
    assert all(m["rows"][0]["mse_mean"] > 0 for m in doc["methods"])  # untrained cycles do not reconstruct x
