"""Nonlinear vendor processing after FBP: TV denoising (ADMIRE/ASiR-like) and GE BONE edge enhancement."""

import numpy as np
import pytest

from ctharmonize.errors import ConfigError
from ctharmonize.simulation import VENDORS, Phantom, simulate_scan
from ctharmonize.simulation.analysis import disk_phantom, edge_mtf
from ctharmonize.simulation.vendor_processing import apply_processing, edge_enhance, edge_preserving_denoise

GE = VENDORS["ge"].processing
SIEMENS = VENDORS["siemens"].processing


def _phantom(hu: np.ndarray, dx: float, thickness: float = 2.5) -> Phantom:
    zeros = np.zeros(hu.shape, np.uint8)
    return Phantom(hu.astype(np.float32), zeros, zeros, (dx, dx, thickness), (0.0, 0.0, 0.0), np.eye(3),
                   0.0, 0, fine_hu=None, fine_factor=1)


def _mtf50(image: np.ndarray, dx: float, radius: float) -> float:
    """MTF50 (lp/cm) by the circular-edge method, linearly interpolated at the first crossing."""
    f, mtf = edge_mtf(image, dx, radius)
    below = np.nonzero(mtf < 0.5)[0][0]
    return float(np.interp(0.5, mtf[below - 1:below + 1][::-1], f[below - 1:below + 1][::-1]))


def _step(height: float, n: int = 64) -> np.ndarray:
    """(1, n, n) vertical step edge: 0 HU left, ``height`` HU right."""
    x = np.zeros((1, n, n), np.float32)
    x[..., n // 2:] = height
    return x


@pytest.fixture(scope="module")
def bone_disk():
    """Noise-free bone (1000 HU) disk in air on a 0.4 mm grid, FBP and processed, all four kernels."""
    dx, radius = 0.4, 16.0
    ph = _phantom(disk_phantom(128, dx, radius, 1000.0, -1000.0)[None], dx)
    out = {}
    for vendor in ("siemens", "ge"):
        for key, ir, edge in (("fbp", 0.0, 0.0), ("ir", 1.0, 0.0), ("both", 1.0, 1.0)):
            for name, vol in simulate_scan(ph, vendor, noise=False, ir_strength=ir, edge_strength=edge).items():
                out[key, name] = vol
    return dx, radius, out


def test_strength_zero_is_exactly_fbp():
    rng = np.random.default_rng(0)
    hu = rng.normal(0.0, 80.0, (2, 48, 48)).astype(np.float32)
    for spec in (SIEMENS, GE):
        np.testing.assert_array_equal(apply_processing(hu, "ge_bone", spec, 0.7, 0.0, 0.0), hu)
    ph = _phantom(disk_phantom(64, 2.0, 50.0, 0.0, -1000.0)[None], 2.0)
    for vendor in ("siemens", "ge"):
        plain = simulate_scan(ph, vendor, seed=4)
        zero = simulate_scan(ph, vendor, seed=4, ir_strength=0.0, edge_strength=0.0)
        for name, vol in plain.items():
            np.testing.assert_array_equal(zero[name].array, vol.array)
            assert zero[name].header.extra["processing"] == "FBP"


def test_processing_labels_in_header():
    ph = _phantom(disk_phantom(48, 2.0, 40.0, 0.0, -1000.0)[None], 2.0)
    ge = simulate_scan(ph, "ge", seed=0, ir_strength=1.0, edge_strength=1.0)
    assert ge["ge_standard"].header.extra["processing"] == "ASiR 40%"
    assert ge["ge_bone"].header.extra["processing"] == "ASiR 40% + edge enhancement"
    si = simulate_scan(ph, "siemens", seed=0, ir_strength=2.0, edge_strength=1.0)
    assert {v.header.extra["processing"] for v in si.values()} == {"ADMIRE 3 x2"}


def test_tv_blend_and_argument_checks():
    rng = np.random.default_rng(1)
    hu = rng.normal(0.0, 60.0, (1, 40, 40)).astype(np.float32)
    full = edge_preserving_denoise(hu, 60.0, 1.0)
    np.testing.assert_allclose(edge_preserving_denoise(hu, 60.0, 0.4), 0.4 * full + 0.6 * hu, atol=1e-3)
    assert full.std() < 0.5 * hu.std()
    with pytest.raises(ConfigError, match="blend"):
        edge_preserving_denoise(hu, 60.0, 1.5)
    with pytest.raises(ConfigError, match="strengths"):
        apply_processing(hu, "ge_bone", GE, 0.7, -1.0, 1.0)


def test_tv_keeps_a_high_contrast_edge(bone_disk):
    dx, radius, vols = bone_disk
    for name in ("siemens_b30f", "siemens_b50f", "ge_standard", "ge_bone"):
        fbp, ir = _mtf50(vols["fbp", name].array, dx, radius), _mtf50(vols["ir", name].array, dx, radius)
        assert abs(ir / fbp - 1.0) < 0.15, (name, fbp, ir)  # measured within 2 %
        c = (np.arange(128) - 63.5) * dx
        inside = (c[:, None] ** 2 + c[None, :] ** 2) < 10.0 ** 2
        assert abs(vols["ir", name].array[0][inside].mean() - vols["fbp", name].array[0][inside].mean()) < 10.0


def test_bone_edge_enhancement_only_on_ge_bone(bone_disk):
    dx, radius, vols = bone_disk
    for name in ("siemens_b30f", "siemens_b50f", "ge_standard"):
        np.testing.assert_array_equal(vols["both", name].array, vols["ir", name].array)
    fbp, both = _mtf50(vols["fbp", "ge_bone"].array, dx, radius), _mtf50(vols["both", "ge_bone"].array, dx, radius)
    assert both / fbp > 1.12, (fbp, both)  # measured +24 %
    f, mtf = edge_mtf(vols["both", "ge_bone"].array, dx, radius)
    _, mtf_fbp = edge_mtf(vols["fbp", "ge_bone"].array, dx, radius)
    band = (f > 1.5) & (f < 6.0)
    assert mtf[band].max() > mtf_fbp[band].max() + 0.15  # overshoot 1.17 -> 1.51


def test_edge_enhancement_is_nonlinear_in_contrast():
    kw = {"gain": 1.0, "spacing_mm": 0.7, "sigma_mm": GE.edge_sigma_mm, "threshold_hu": GE.edge_threshold_hu}
    x = _step(1000.0)
    e1 = edge_enhance(x, **kw) - x
    e2 = edge_enhance(2 * x, **kw) - 2 * x
    # a linear filter would give e2 == 2 e1 exactly; the contrast-dependent gain does not
    assert np.abs(e2 - 2 * e1).max() > 0.2 * np.abs(2 * e1).max()
    assert np.abs(e2).max() > 2.2 * np.abs(e1).max()

    def relative_overshoot(height: float) -> float:
        s = _step(height)
        return float((edge_enhance(s, **kw) - s).max() / height)

    strong, weak = relative_overshoot(1000.0), relative_overshoot(20.0)
    assert strong > 0.08 and weak < 0.02 and strong > 10.0 * weak, (strong, weak)
    assert np.all(np.isfinite(e1)) and edge_enhance(x, 0.0, 0.7).tobytes() == x.tobytes()


def test_apply_processing_uses_the_vendor_edge_gain():
    x = _step(1000.0)
    bone = apply_processing(x, "ge_bone", GE, 0.7, ir_strength=0.0, edge_strength=1.0)
    np.testing.assert_allclose(bone, edge_enhance(x, GE.edge_gain["ge_bone"], 0.7, GE.edge_sigma_mm,
                                                  GE.edge_threshold_hu), atol=1e-4)
    assert np.abs(bone - x).max() > 50.0
    double = apply_processing(x, "ge_bone", GE, 0.7, ir_strength=0.0, edge_strength=2.0)
    assert np.abs(double - x).max() > 1.8 * np.abs(bone - x).max()
    np.testing.assert_array_equal(apply_processing(x, "ge_standard", GE, 0.7, 0.0, 1.0), x)
