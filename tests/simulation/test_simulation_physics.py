"""CT physics of the simulator, checked against values computed independently in the tests."""

import numpy as np
import pytest

from ctharmonize.errors import UnknownDomainError
from ctharmonize.simulation import KERNELS, VENDORS, Phantom, generate_phantom, simulate_scan
from ctharmonize.simulation.analysis import disk_phantom, edge_mtf, laa950


def _phantom(hu: np.ndarray, dx: float, thickness: float = 2.5) -> Phantom:
    zeros = np.zeros(hu.shape, np.uint8)
    return Phantom(hu.astype(np.float32), zeros, zeros, (dx, dx, thickness), (0.0, 0.0, 0.0), np.eye(3),
                   0.0, 0, fine_hu=None, fine_factor=1)


def _design_mtf50(kernel) -> float:
    """Independent root of the spec formula MTF(f) = 0.5 by bisection."""
    lo, hi = 0.5, 20.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if kernel.mtf(mid) > 0.5 else (lo, mid)
    return 0.5 * (lo + hi)


@pytest.fixture(scope="module")
def edge_images():
    dx, radius = 0.4, 16.0
    disk = disk_phantom(128, dx, radius, 0.0, -1000.0)[None]
    ph = _phantom(disk, dx)
    vols = {}
    for vendor in ("siemens", "ge"):
        vols.update(simulate_scan(ph, vendor, noise=False))
    return dx, radius, vols


@pytest.mark.parametrize("name", ["siemens_b30f", "siemens_b50f", "ge_standard", "ge_bone"])
def test_measured_mtf50_matches_kernel_design(edge_images, name):
    dx, radius, vols = edge_images
    f, mtf = edge_mtf(vols[name].array, dx, radius)
    below = np.nonzero(mtf < 0.5)[0][0]
    measured = np.interp(0.5, mtf[below - 1:below + 1][::-1], f[below - 1:below + 1][::-1])
    design = _design_mtf50(KERNELS[name])
    assert abs(measured - design) / design < 0.15, (measured, design)


def test_mtf_order_and_bone_boost(edge_images):
    dx, radius, vols = edge_images
    m50 = {}
    for name, vol in vols.items():
        f, mtf = edge_mtf(vol.array, dx, radius)
        m50[name] = f[np.nonzero(mtf < 0.5)[0][0]]
        if name == "ge_bone":
            assert mtf[(f > 2) & (f < 4)].max() > 1.05  # mid-frequency boost
    assert m50["siemens_b30f"] < m50["siemens_b50f"] and m50["ge_standard"] < m50["ge_bone"]


@pytest.fixture(scope="module")
def water():
    dx = 1.2
    cyl = disk_phantom(192, dx, 100.0, 0.0, -1000.0)
    hu = np.repeat(cyl[None], 2, axis=0)
    ph = _phantom(hu, dx)
    lo = simulate_scan(ph, "siemens", mas=40.0, seed=1)
    hi = simulate_scan(ph, "siemens", mas=160.0, seed=2)
    c = (np.arange(192) - 95.5) * dx
    roi = np.broadcast_to((c[:, None] ** 2 + c[None, :] ** 2) < 50.0 ** 2, hu.shape)
    return lo, hi, roi


def test_noise_soft_below_sharp_by_two_to_three(water):
    lo, _, roi = water
    s30 = lo["siemens_b30f"].array[roi].std()
    s50 = lo["siemens_b50f"].array[roi].std()
    assert 10.0 < s30 < s50
    assert 1.8 < s50 / s30 < 3.2, (s30, s50)


def test_noise_scales_with_inverse_sqrt_mas(water):
    lo, hi, roi = water
    expected = np.sqrt(160.0 / 40.0)
    for name in ("siemens_b30f", "siemens_b50f"):
        ratio = lo[name].array[roi].std() / hi[name].array[roi].std()
        assert abs(ratio / expected - 1.0) < 0.10, (name, ratio)


def test_mean_hu_preserved_across_kernels_and_truth(water):
    lo, hi, roi = water
    for vols in (lo, hi):
        for vol in vols.values():
            assert abs(vol.array[roi].mean() - 0.0) < 5.0
    air = np.broadcast_to(np.abs(np.arange(192) - 95.5)[None, :] * 1.2 > 105, roi.shape) & lo["siemens_b30f"].fov_mask
    assert abs(lo["siemens_b30f"].array[air].mean() + 1000.0) < 15.0


def test_kernels_share_one_noisy_sinogram(water):
    lo, hi, roi = water
    a = lo["siemens_b30f"].array[roi]
    b = lo["siemens_b50f"].array[roi]
    c = hi["siemens_b30f"].array[roi]
    assert np.corrcoef(a - a.mean(), b - b.mean())[0, 1] > 0.3  # same noise realisation
    assert abs(np.corrcoef(a - a.mean(), c - c.mean())[0, 1]) < 0.1  # independent scans


def test_headers_fov_and_padding(water):
    lo, _, _ = water
    vol = lo["siemens_b50f"]
    h = vol.header
    assert h.manufacturer == "SIEMENS" and h.kernel == "B50f" and h.kvp == 120.0 and h.exposure_mas == 40.0
    assert h.padding_value == VENDORS["siemens"].padding_value and h.slice_thickness == 2.5
    assert vol.fov_mask is not None and not vol.fov_mask[:, 0, 0].any() and vol.fov_mask[:, 96, 96].all()
    assert np.all(vol.array[~vol.fov_mask] == -1024.0)


def test_sharp_kernel_inflates_laa950_and_soft_is_closer_to_truth():
    ph = generate_phantom(seed=2, size=192, slices=3, emphysema_fraction=0.08)
    truth = ph.true_laa950()
    for vendor in ("siemens", "ge"):
        soft, sharp = VENDORS[vendor].kernels
        vols = simulate_scan(ph, vendor, seed=3)
        l_soft, l_sharp = laa950(vols[soft].array, ph.lung), laa950(vols[sharp].array, ph.lung)
        assert l_sharp - l_soft > 3.0, (vendor, l_soft, l_sharp)
        assert abs(l_soft - truth) < abs(l_sharp - truth)


def test_unknown_vendor_and_kernel():
    ph = _phantom(np.zeros((1, 32, 32)), 1.0)
    with pytest.raises(UnknownDomainError, match="unknown vendor"):
        simulate_scan(ph, "acme")
    with pytest.raises(UnknownDomainError, match="kernel"):
        simulate_scan(ph, "siemens", kernels=["B99"])
