"""PSNR, SSIM, NRMSE, NCC in HU against hand computations."""

import math

import numpy as np
import pytest

from ctharmonize.metrics import ncc, nrmse, psnr, ssim


@pytest.fixture()
def pair():
    rng = np.random.default_rng(3)
    ref = rng.normal(-500, 300, size=(3, 16, 16)).astype(np.float32)
    img = (ref + rng.normal(0, 40, size=ref.shape)).astype(np.float32)
    return img, ref


def test_psnr_by_hand(pair):
    img, ref = pair
    mse = np.mean((np.clip(img, -1024, 3072).astype(float) - np.clip(ref, -1024, 3072)) ** 2)
    assert psnr(img, ref) == pytest.approx(10 * math.log10(4096.0**2 / mse))
    mse_raw = np.mean((img.astype(float) - ref) ** 2)
    assert psnr(img, ref, data_range=2000.0, hu_window=None) == pytest.approx(10 * math.log10(2000.0**2 / mse_raw))
    assert psnr(ref, ref) == math.inf
    mask = np.zeros(ref.shape, bool)
    mask[1] = True
    mse_m = np.mean((np.clip(img[1], -1024, 3072).astype(float) - np.clip(ref[1], -1024, 3072)) ** 2)
    assert psnr(img, ref, mask=mask) == pytest.approx(10 * math.log10(4096.0**2 / mse_m))


def test_nrmse_by_hand(pair):
    img, ref = pair
    x = np.clip(img, -1024, 3072).astype(float)
    y = np.clip(ref, -1024, 3072).astype(float)
    rmse = math.sqrt(np.mean((x - y) ** 2))
    assert nrmse(img, ref) == pytest.approx(rmse / math.sqrt(np.mean(y**2)))
    assert nrmse(img, ref, normalization="min-max") == pytest.approx(rmse / (y.max() - y.min()))


def test_ncc_by_hand(pair):
    img, ref = pair
    x = np.clip(img, -1024, 3072).astype(float).ravel()
    y = np.clip(ref, -1024, 3072).astype(float).ravel()
    xc, yc = x - x.mean(), y - y.mean()
    assert ncc(img, ref) == pytest.approx(np.sum(xc * yc) / math.sqrt(np.sum(xc**2) * np.sum(yc**2)))
    # invariant to an HU offset and a positive scale; -1 for a negated image
    assert ncc(2 * ref + 100, ref, hu_window=None) == pytest.approx(1.0)
    assert ncc(-ref, ref, hu_window=None) == pytest.approx(-1.0)
    assert math.isnan(ncc(np.zeros((2, 8, 8)), ref[:2, :8, :8]))


def test_ssim_properties_and_constant_images():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 200, size=(2, 24, 24))
    assert ssim(ref, ref) == pytest.approx(1.0)
    noisy = ref + rng.normal(0, 200, size=ref.shape)
    worse = ref + rng.normal(0, 600, size=ref.shape)
    assert ssim(worse, ref) < ssim(noisy, ref) < 1.0
    # constant images a and b: SSIM = (2ab + C1) / (a² + b² + C1) with C1 = (0.01 L)² (contrast term = 1)
    a = np.full((1, 16, 16), 100.0)
    b = np.full((1, 16, 16), 300.0)
    c1 = (0.01 * 4096.0) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 300 + c1) / (100**2 + 300**2 + c1))
    mask = np.ones(a.shape, bool)
    assert ssim(a, b, mask=mask) == pytest.approx((2 * 100 * 300 + c1) / (100**2 + 300**2 + c1))
