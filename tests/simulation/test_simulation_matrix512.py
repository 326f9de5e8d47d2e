"""A 512 x 512 matrix (0.68 mm pixels) is supported end to end: phantom, scan, FOV, plausible HU."""

import numpy as np
import pytest

from ctharmonize.simulation import VENDORS, generate_phantom, simulate_scan


@pytest.fixture(scope="module")
def scan512():
    spec = VENDORS["siemens"]
    ph = generate_phantom(seed=4, size=512, slices=2, fov_mm=spec.recon_fov_mm, fov_center_mm=spec.fov_center_mm,
                          slice_thickness=spec.slice_thickness_mm, emphysema_fraction=0.05)
    return ph, simulate_scan(ph, "siemens", seed=1)


def test_512_shapes_and_geometry(scan512):
    ph, vols = scan512
    assert ph.hu.shape == ph.labels.shape == ph.lung.shape == (2, 512, 512)
    assert ph.spacing == pytest.approx((350.0 / 512, 350.0 / 512, 2.0))
    assert set(vols) == {"siemens_b30f", "siemens_b50f"}
    for vol in vols.values():
        assert vol.array.shape == (2, 512, 512) and vol.array.dtype == np.float32
        assert vol.spacing == pytest.approx(ph.spacing)


def test_512_fov_mask_is_the_inscribed_circle(scan512):
    _, vols = scan512
    c = np.arange(512) - 255.5
    circle = (c[:, None] ** 2 + c[None, :] ** 2) <= 256.0 ** 2  # computed here, independently
    for vol in vols.values():
        assert vol.fov_mask.shape == (2, 512, 512)
        np.testing.assert_array_equal(vol.fov_mask[0], circle)
        np.testing.assert_array_equal(vol.fov_mask[1], circle)
        assert np.all(vol.array[~vol.fov_mask] == -1024.0)


def test_512_hu_sanity(scan512):
    ph, vols = scan512
    a = ph.info["anatomy"]
    soft = vols["siemens_b30f"]
    fov = soft.fov_mask
    assert np.all(np.isfinite(soft.array))
    # air inside the FOV but outside the body, soft tissue and fat near their drawn values
    air = fov & (ph.labels == 0) & (ph.hu < -990)
    assert abs(soft.array[air].mean() + 1000.0) < 20.0
    for code, key in ((5, "hu_muscle"), (6, "hu_fat")):
        region = fov & (ph.labels == code)
        assert abs(np.median(soft.array[region]) - a[key]) < 30.0, key
    # the lungs: the reconstruction's mean follows the ground truth; bone is bright
    lung = fov & (ph.lung > 0)
    assert lung.sum() > 0.1 * fov.sum()
    assert abs(soft.array[lung].mean() - ph.hu[lung].mean()) < 25.0
    assert np.median(soft.array[fov & (ph.labels == 8)]) > 250.0
    # the sharp kernel is noisier than the soft one in a uniform tissue (muscle)
    muscle = fov & (ph.labels == 5)
    sharp = vols["siemens_b50f"].array
    assert sharp[muscle].std() > soft.array[muscle].std()
