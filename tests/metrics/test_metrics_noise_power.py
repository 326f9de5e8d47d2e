"""NPS against analytic cases: white noise (flat, integral = variance), filtered noise (known shape and peak)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ctharmonize.metrics.noise_power import noise_power_spectrum, nps_peak_frequency, radial_nps

DX, DY = 0.5, 0.5  # mm


def _integral(nps, fy, fx):
    return float(nps.sum() * abs(fx[1] - fx[0]) * abs(fy[1] - fy[0]))


def test_white_noise_is_flat_and_integrates_to_the_variance():
    rng = np.random.default_rng(0)
    sigma = 20.0  # HU
    noise = rng.normal(0.0, sigma, size=(32, 64, 64))
    nps, fy, fx = noise_power_spectrum(noise, (DX, DY))
    sample_var = float(np.mean((noise - noise.mean(axis=(1, 2), keepdims=True)) ** 2))
    assert _integral(nps, fy, fx) == pytest.approx(sample_var, rel=1e-9)  # Parseval, exactly
    f, radial = radial_nps(nps, fy, fx)
    flat = sigma**2 * DX * DY
    assert np.all(np.abs(radial[1:] / flat - 1.0) < 0.25)  # every ring within sampling error of flat
    assert float(np.mean(radial[1:])) == pytest.approx(flat, rel=0.03)
    assert f[0] == pytest.approx(0.5 / (64 * DX) * 10.0)  # ring centres in lp/cm


def test_masked_nps_keeps_the_variance_and_flat_level():
    rng = np.random.default_rng(1)
    noise = rng.normal(5.0, 10.0, size=(16, 64, 64))  # a mean offset: removed inside the mask
    mask = np.zeros(noise.shape, bool)
    mask[:, 10:50, 20:44] = True
    mask[:, 30:60, 5:15] = True
    nps, fy, fx = noise_power_spectrum(noise, (DX, DY), mask)
    means = np.array([noise[k][mask[k]].mean() for k in range(noise.shape[0])])
    pooled = float(np.sum([np.sum((noise[k][mask[k]] - means[k]) ** 2) for k in range(16)]) / mask.sum())
    assert _integral(nps, fy, fx) == pytest.approx(pooled, rel=1e-9)
    _, radial = radial_nps(nps, fy, fx)
    assert float(np.mean(radial[2:])) == pytest.approx(100.0 * DX * DY, rel=0.05)


def test_empty_mask_gives_nan():
    nps, _, _ = noise_power_spectrum(np.ones((4, 8, 8)), (1.0, 1.0), np.zeros((4, 8, 8), bool))
    assert np.all(np.isnan(nps))
    assert np.isnan(nps_peak_frequency(np.ones((4, 8, 8)), (1.0, 1.0), np.zeros((4, 8, 8), bool)))


def test_band_pass_noise_peaks_at_the_filter_peak():
    """Noise filtered by a Gaussian ring |H(f)|² = exp(-(|f| - f0)² / (2 w²)): NPS ∝ |H|², maximal at f0."""
    rng = np.random.default_rng(2)
    n, f0, w = 128, 0.3, 0.04  # cycles/mm; rings are 1 / (n dx) = 0.0156 cycles/mm wide
    white = rng.normal(0.0, 1.0, size=(24, n, n))
    radius = np.hypot(np.fft.fftfreq(n, d=DY)[:, None], np.fft.fftfreq(n, d=DX)[None, :])
    h = np.exp(-((radius - f0) ** 2) / (4 * w**2))
    noise = np.real(np.fft.ifft2(np.fft.fft2(white) * h))
    peak = nps_peak_frequency(noise, (DX, DY))
    ring = 10.0 / (n * DX)  # ring width in lp/cm
    assert peak == pytest.approx(10.0 * f0, abs=0.5 * ring)
    # shape: the radial NPS follows dx·dy·|H(f)|² (ring means of |H|², computed on the same grid)
    f, radial = radial_nps(*noise_power_spectrum(noise, (DX, DY)))
    _, expected = radial_nps(DX * DY * h**2, np.fft.fftfreq(n, d=DY), np.fft.fftfreq(n, d=DX))
    strong = expected > 0.2 * expected.max()
    assert np.allclose(radial[strong], expected[strong], rtol=0.1)


def test_gaussian_filtered_noise_is_low_pass_with_the_gaussian_shape():
    """gaussian_filter(σ px) of white noise: NPS ∝ exp(-4π²σ²(f·dx)²), peak at the lowest ring."""
    rng = np.random.default_rng(3)
    sigma_px, n = 2.0, 128
    noise = gaussian_filter(rng.normal(0.0, 30.0, size=(48, n, n)), sigma=(0, sigma_px, sigma_px), mode="wrap")
    nps, fy, fx = noise_power_spectrum(noise, (DX, DY))
    assert _integral(nps, fy, fx) == pytest.approx(float(np.var(noise, axis=(1, 2)).mean()), rel=1e-9)
    f, radial = radial_nps(nps, fy, fx)
    half_max = 10.0 * np.sqrt(np.log(2)) / (2 * np.pi * sigma_px) / DX  # lp/cm where |H|² = 1/2
    assert nps_peak_frequency(noise, (DX, DY)) < 0.5 * half_max  # monotone decreasing: the peak is at low f
    u = f / 10.0 * DX  # cycles/pixel
    expected = 900.0 * DX * DY * np.exp(-4 * np.pi**2 * sigma_px**2 * u**2)
    strong = expected > 0.1 * expected.max()
    assert np.allclose(radial[1:][strong[1:]], expected[1:][strong[1:]], rtol=0.12)


def test_anisotropic_spacing_rings_use_the_coarser_resolution():
    nps, fy, fx = noise_power_spectrum(np.random.default_rng(4).normal(size=(2, 32, 64)), (0.5, 0.8))
    f, _ = radial_nps(nps, fy, fx)
    df = max(1 / (64 * 0.5), 1 / (32 * 0.8))
    assert np.allclose(np.diff(f), df * 10.0)
