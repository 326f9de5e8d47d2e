"""Noise power spectrum from ROIs: white noise of known variance, detrending, simulated kernels and dose."""

from __future__ import annotations

import numpy as np
import pytest
from physics_volumes import chest, noise_free

from ctharmonize.errors import InputError
from ctharmonize.metrics.noise_power import noise_power_spectrum, nps_peak_frequency
from ctharmonize.physics import detrend, measure_nps
from ctharmonize.simulation import VENDORS, Phantom, simulate_scan
from ctharmonize.simulation.analysis import disk_phantom

SX, SY = 0.7, 0.9


@pytest.fixture(scope="module")
def white():
    sigma = 20.0
    noise = np.random.default_rng(0).normal(0.0, sigma, (6, 128, 128)).astype(np.float32)
    everywhere = np.ones(noise.shape, dtype=bool)
    return sigma, noise, everywhere


def test_white_noise_gives_a_flat_nps_of_sigma2_sx_sy(white):
    sigma, noise, everywhere = white
    r = measure_nps(noise, (SX, SY, 1.0), body=everywhere, reference=np.zeros_like(noise))
    flat = sigma**2 * SX * SY
    assert len(r.rois) == 64 and r.source == "reference"
    off_dc = np.ones(r.nps.shape, dtype=bool)
    off_dc[15:18, 15:18] = False  # the detrended polynomial removes power at and next to DC
    assert r.nps[off_dc].mean() == pytest.approx(flat, rel=0.03)
    band = (r.radial_frequency > 1.0) & (r.radial_frequency < 10.0 / (2 * SY))
    assert np.abs(r.radial[band] / flat - 1.0).max() < 0.15  # flat in every ring
    assert r.integral() == pytest.approx(r.noise_sd**2, rel=1e-9)  # Parseval
    assert r.noise_sd == pytest.approx(sigma * np.sqrt(1 - 6 / 32**2), rel=0.02)
    assert r.fx[16] == 0.0 and r.fx[17] == pytest.approx(10.0 / (32 * SX))  # lp/cm, fftshift-centred
    assert r.fy[17] == pytest.approx(10.0 / (32 * SY))


def test_uniform_roi_mode_on_white_noise_agrees_with_the_reference_mode(white):
    sigma, noise, everywhere = white
    r = measure_nps(noise, (SX, SY, 1.0), body=everywhere, mask=everywhere)
    assert r.source == "mask" and len(r.rois) >= 8
    assert r.noise_sd == pytest.approx(sigma, rel=0.06)  # the quieter ROIs: a few per cent low at most


def test_detrending_removes_a_quadratic_background(white):
    sigma, noise, _ = white
    y, x = np.mgrid[0:32, 0:32]
    trend = 0.1 * (x - 16.0) ** 2 - 2.5 * y  # HU: a 26 HU bowl and an 80 HU ramp across each ROI
    rois = noise[0, :96, :96].reshape(3, 32, 3, 32).transpose(0, 2, 1, 3).reshape(9, 32, 32)
    clean = detrend(rois, 2)
    np.testing.assert_allclose(detrend(rois + trend, 2), clean, atol=1e-9)
    assert detrend(rois + trend, 0).std() > 1.3 * clean.std()  # the mean alone leaves the trend


@pytest.fixture(scope="module")
def chest_nps():
    """NPS of the simulated chest against its noise-free reconstruction; Siemens B30f also at 4x and 16x
    the default dose (the default, 40 mAs, is photon-starved: its noise falls faster than 1/sqrt(mAs))."""
    _, vols = chest(0)
    clean = noise_free(0)
    out = {k: measure_nps(v.array, v.spacing, fov_mask=v.fov_mask, reference=clean[k].array)
           for k, v in vols.items()}
    for factor in (4, 16):
        v = chest(0, mas=factor * VENDORS["siemens"].default_mas)[1]["siemens_b30f"]
        out[f"siemens_b30f@{factor}x"] = measure_nps(v.array, v.spacing, fov_mask=v.fov_mask,
                                                     reference=clean["siemens_b30f"].array)
    return clean, vols, out


def test_sharp_kernels_peak_at_higher_frequency_with_more_noise(chest_nps):
    _, _, r = chest_nps
    for soft, sharp in (("siemens_b30f", "siemens_b50f"), ("ge_standard", "ge_bone")):
        assert r[sharp].peak_frequency > 1.4 * r[soft].peak_frequency, (soft, sharp)
        assert r[sharp].mean_frequency > r[soft].mean_frequency
        assert r[sharp].noise_sd > 1.5 * r[soft].noise_sd


def test_noise_sd_matches_the_pixel_sd_and_halves_at_four_times_the_dose(chest_nps):
    """The SD from the NPS is the pixel SD of the same ROIs; 4x the dose halves it, same NPS shape."""
    clean, vols, r = chest_nps
    res = r["siemens_b30f"]
    n = res.roi_size
    diff = vols["siemens_b30f"].array - clean["siemens_b30f"].array
    pixels = np.stack([diff[z, i:i + n, j:j + n] for z, i, j in res.rois])
    # independent: plain pixel SD of the same ROIs (each ROI's own mean removed)
    sd = np.sqrt(np.mean([p.var() for p in pixels]))
    assert res.noise_sd == pytest.approx(sd, rel=0.02)
    lo, hi = r["siemens_b30f@4x"], r["siemens_b30f@16x"]
    assert lo.noise_sd / hi.noise_sd == pytest.approx(2.0, rel=0.10)
    assert hi.peak_frequency == pytest.approx(lo.peak_frequency, rel=0.10)
    assert res.noise_sd > 2.0 * lo.noise_sd


@pytest.fixture(scope="module")
def water():
    """A 20 cm water cylinder (the classic NPS phantom), FBP, both Siemens kernels."""
    dx = 0.8
    cyl = np.repeat(disk_phantom(320, dx, 100.0, 0.0, -1000.0)[None], 3, axis=0)
    zeros = np.zeros(cyl.shape, np.uint8)
    ph = Phantom(cyl, zeros, zeros, (dx, dx, 2.0), (0.0, 0.0, 0.0), np.eye(3), 0.0, 0, fine_hu=None, fine_factor=1)
    return cyl, simulate_scan(ph, "siemens", mas=80.0, seed=3)


def test_uniform_rois_in_a_water_cylinder_hold_noise_only(water):
    """The ROIs picked as uniform hold no structure: their NPS equals the NPS of the true noise
    (image - ground truth) in the same ROIs, computed independently with metrics.noise_power."""
    cyl, vols = water
    for k, v in vols.items():
        r = measure_nps(v.array, v.spacing, fov_mask=v.fov_mask)
        assert r.source == "uniform ROIs" and len(r.rois) >= 16
        n = r.roi_size
        noise = np.stack([(v.array - cyl)[z, i:i + n, j:j + n] for z, i, j in r.rois])
        nps, _, _ = noise_power_spectrum(detrend(noise), v.spacing)
        assert r.noise_sd == pytest.approx(float(np.sqrt(detrend(noise).var(axis=(1, 2)).mean())), rel=0.01), k
        np.testing.assert_allclose(r.nps, np.fft.fftshift(nps), rtol=0.02, atol=0.02 * nps.mean())
        assert r.peak_frequency == pytest.approx(nps_peak_frequency(detrend(noise), v.spacing), rel=0.02), k
    b30, b50 = (measure_nps(vols[k].array, vols[k].spacing, fov_mask=vols[k].fov_mask)
                for k in ("siemens_b30f", "siemens_b50f"))
    assert b50.peak_frequency > 1.4 * b30.peak_frequency
    assert b50.noise_sd > 1.5 * b30.noise_sd


def test_no_uniform_region_is_an_input_error():
    air = np.full((2, 64, 64), -1000.0, np.float32)
    air[:, 16:48, 16:48] = 0.0
    with pytest.raises(InputError, match="candidate 32x32 ROIs"):
        measure_nps(air, (1.0, 1.0, 1.0))
