"""Detectability index: scaling laws, closed forms and independent quadrature, measured kernels and dose."""

from __future__ import annotations

import numpy as np
import pytest
from physics_volumes import chest, noise_free
from scipy import integrate
from scipy.special import j1

from ctharmonize.errors import ConfigError
from ctharmonize.physics import (
    ObserverModel,
    detectability,
    disk_task,
    dprime,
    eye_filter,
    measure_nps,
    nps_function,
    skin_air_mtf,
)
from ctharmonize.simulation import VENDORS

NYQ = 10.0  # lp/cm: 0.5 mm pixels
N0 = 50.0  # HU² mm², a flat NPS


def _gauss_mtf(f_lp_cm):
    return np.exp(-((np.asarray(f_lp_cm) / 4.0) ** 2))


def _flat(level=N0):
    return lambda u, v: np.full(np.shape(u), level)


@pytest.mark.parametrize("observer", ["npwe", "pwei"])
def test_quarter_nps_doubles_dprime(observer):
    none = ObserverModel(alpha=0.0)
    for model in (none, ObserverModel(alpha=0.0, eye=False)):
        d1 = dprime(_gauss_mtf, _flat(), NYQ, model, observer)
        d4 = dprime(_gauss_mtf, _flat(N0 / 4), NYQ, model, observer)
        assert d4 / d1 == pytest.approx(2.0, rel=1e-9)
    # with paper 001's internal noise (alpha = 1e-8) the gain is a hair under 2
    d1 = dprime(_gauss_mtf, _flat(), NYQ, ObserverModel(), observer)
    d4 = dprime(_gauss_mtf, _flat(N0 / 4), NYQ, ObserverModel(), observer)
    assert 1.95 < d4 / d1 <= 2.0


def test_dprime_is_proportional_to_contrast():
    a = dprime(_gauss_mtf, _flat(), NYQ, ObserverModel(contrast_hu=100.0, alpha=0.0))
    b = dprime(_gauss_mtf, _flat(), NYQ, ObserverModel(contrast_hu=200.0, alpha=0.0))
    assert b == pytest.approx(2.0 * a, rel=1e-9)


def test_gaussian_signal_in_white_noise_closed_form():
    """w(x) = C exp(-x²/2s²), MTF 1, NPS N0, no eye filter: d′² = ∫W²/N0 = C² π s² / N0 (Parseval)."""
    c, s = 100.0, 2.0

    def task(f_lp_cm):
        return c * 2 * np.pi * s**2 * np.exp(-2 * np.pi**2 * s**2 * (np.asarray(f_lp_cm) / 10.0) ** 2)

    expected = np.sqrt(c**2 * np.pi * s**2 / N0)
    model = ObserverModel(alpha=0.0, eye=False)
    one = lambda f: np.ones(np.shape(f))  # noqa: E731
    for observer in ("npwe", "pwei"):  # in white noise NPW = prewhitening
        assert dprime(one, _flat(), NYQ, model, observer, task=task) == pytest.approx(expected, rel=1e-3)


def test_npwe_disk_with_eye_filter_matches_radial_quadrature():
    """The 2-D grid sum against scipy's adaptive quadrature of the radial integrals (written out here)."""
    r, c, dist = 2.0, 100.0, 500.0
    peak, n_exp = 4.0, 1.3
    ni = 1e-8 * dist**2

    def w(f):  # cycles/mm
        x = 2 * np.pi * r * f
        return c * np.pi * r**2 * (2 * j1(x) / x if x > 0 else 1.0)

    def e(f):
        rho = f * dist * np.pi / 180.0
        return (rho / peak) ** n_exp * np.exp(-n_exp / (2 * peak**2) * (rho**2 - peak**2))

    def m(f):
        return float(_gauss_mtf(10.0 * f))

    top = 1.0  # cycles/mm: the integrand is < 1e-12 of its peak beyond (Gaussian MTF)
    num = integrate.quad(lambda f: w(f) ** 2 * m(f) ** 2 * e(f) ** 2 * 2 * np.pi * f, 0, top, limit=200)[0]
    den = integrate.quad(lambda f: w(f) ** 2 * m(f) ** 2 * e(f) ** 2 * (e(f) ** 2 * N0 + ni) * 2 * np.pi * f,
                         0, top, limit=200)[0]
    pw = integrate.quad(lambda f: w(f) ** 2 * m(f) ** 2 * e(f) ** 2 / (e(f) ** 2 * N0 + ni) * 2 * np.pi * f,
                        0, top, limit=400)[0]
    assert dprime(_gauss_mtf, _flat(), NYQ, ObserverModel(), "npwe", grid=512) == pytest.approx(
        num / np.sqrt(den), rel=5e-3)
    assert dprime(_gauss_mtf, _flat(), NYQ, ObserverModel(), "pwei", grid=512) == pytest.approx(
        np.sqrt(pw), rel=5e-3)


def test_task_and_eye_filter_constants():
    assert disk_task(0.0) == pytest.approx(100.0 * np.pi * 4.0)  # C · area of a 4 mm disk, HU mm²
    first_zero = 3.8317059702 / (2 * np.pi * 2.0)  # J1's first root
    assert abs(disk_task(first_zero)) < 1e-6 * disk_task(0.0)
    f_peak = 4.0 * 180.0 / (np.pi * 500.0)  # cycles/mm seen at 4 cycles/degree from 500 mm
    assert eye_filter(np.array([f_peak]))[0] == pytest.approx(1.0)
    f = np.linspace(0.01, 2.0, 2000)
    assert f[np.argmax(eye_filter(f))] == pytest.approx(f_peak, abs=2e-3)
    assert eye_filter(np.array([0.0]))[0] == 0.0
    near = eye_filter(np.array([f_peak]), ObserverModel(viewing_distance_mm=1000.0))[0]
    assert near < 1.0  # a farther reader sees the same mm frequency at more cycles/degree
    assert ObserverModel().internal_noise == pytest.approx(1e-8 * 500.0**2)
    with pytest.raises(ConfigError, match="unknown observer"):
        dprime(_gauss_mtf, _flat(), NYQ, observer="ideal")


@pytest.fixture(scope="module")
def measured():
    """d′ (both observers) from the MTF and NPS measured on the simulated images, default and 4x dose."""
    out = {}
    _, vols = chest(0)
    _, hi = chest(0, mas=4 * VENDORS["siemens"].default_mas)
    clean = noise_free(0)
    for tag, scans in (("", vols), ("@4x", {"siemens_b30f": hi["siemens_b30f"]})):
        for k, v in scans.items():
            edge = skin_air_mtf(v.array, v.spacing, fov_mask=v.fov_mask)
            noise = measure_nps(v.array, v.spacing, fov_mask=v.fov_mask, reference=clean[k].array)
            out[k + tag] = (edge, noise, detectability(edge, noise))
    return out


def test_smoother_kernel_is_more_detectable_at_equal_dose(measured):
    """The same sinogram reconstructed soft and sharp: the NPWE observer prefers the soft kernel."""
    for soft, sharp in (("siemens_b30f", "siemens_b50f"), ("ge_standard", "ge_bone")):
        assert measured[soft][2].dprime_npwe > 1.15 * measured[sharp][2].dprime_npwe, (soft, sharp)


def test_more_dose_raises_dprime_as_the_noise_sd_falls(measured):
    """4x the dose: d′ rises by the factor the measured noise SD falls (same kernel, same NPS shape up to
    the photon starvation of the default dose), and the MTF is unchanged."""
    low, high = measured["siemens_b30f"], measured["siemens_b30f@4x"]
    gain = high[2].dprime_npwe / low[2].dprime_npwe
    assert gain > 2.0
    assert gain == pytest.approx(low[1].noise_sd / high[1].noise_sd, rel=0.10)
    assert high[0].mtf50 == pytest.approx(low[0].mtf50, rel=0.05)


def test_measured_nps_function_and_summary(measured):
    edge, noise, result = measured["siemens_b50f"]
    fn = nps_function(noise)
    uu, vv = np.meshgrid(noise.fx, noise.fy)
    np.testing.assert_allclose(fn(uu, vv), noise.nps, rtol=1e-9, atol=1e-9)  # exact on the grid
    assert fn(np.array([noise.fx[0]]), np.array([0.0]))[0] == pytest.approx(fn(np.array([-noise.fx[0]]),
                                                                               np.array([0.0]))[0])
    doc = result.summary()
    assert doc["model"]["diameter_mm"] == 4.0 and doc["model"]["contrast_hu"] == 100.0
    assert doc["dprime_npwe"] > 0 and doc["dprime_pwei"] > 0
    assert doc["mtf50_lp_cm"] == edge.mtf50
