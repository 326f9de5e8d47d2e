"""Emphysema measures against values computed by hand with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ctharmonize.metrics import emphysema_measures as from_package
from ctharmonize.metrics.emphysema import (
    emphysema_measures,
    laa,
    lung_mass_g,
    lung_volume_ml,
    mean_lung_density,
    perc15,
)

SPACING = (0.7, 0.8, 1.25)
VOXEL_ML = 0.7 * 0.8 * 1.25 / 1000.0


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    hu = rng.normal(-860.0, 70.0, size=(6, 20, 24)).astype(np.float32)
    hu[0, 0, :5] = -950.0  # exactly at the threshold: not "below"
    lung = np.zeros(hu.shape, np.uint8)
    lung[1:5, 2:18, 2:11] = 1
    lung[1:5, 2:18, 13:22] = 2
    lung[0, 0, :5] = 1
    return hu, lung


def _by_hand(values: np.ndarray) -> dict[str, float]:
    v = np.sort(values.astype(np.float64))
    n = v.size
    pos = (n - 1) * 0.15
    lo = int(np.floor(pos))
    p15 = v[lo] + (pos - lo) * (v[min(lo + 1, n - 1)] - v[lo])
    return {
        "laa_pct": 100.0 * sum(1 for x in values if x < -950.0) / n,
        "perc15_hu": p15,
        "volume_ml": n * VOXEL_ML,
        "mean_hu": float(np.sum(v) / n),
        "mass_g": float(np.sum(VOXEL_ML * (v + 1000.0) / 1000.0)),
    }


def test_all_measures_per_side(case):
    hu, lung = case
    result = emphysema_measures(hu, lung, SPACING)
    assert set(result) == {"both", "right", "left"}
    for side, sel in (("both", lung > 0), ("right", lung == 1), ("left", lung == 2)):
        expected = _by_hand(hu[sel])
        for key, value in expected.items():
            assert isinstance(result[side][key], float)
            assert result[side][key] == pytest.approx(value, rel=1e-9, abs=1e-6), (side, key)


def test_single_functions(case):
    hu, lung = case
    sel = lung > 0
    v = hu[sel].astype(np.float64)
    assert laa(hu, lung) == pytest.approx(100.0 * np.count_nonzero(v < -950.0) / v.size)
    assert laa(hu, lung, threshold=-900.0) == pytest.approx(100.0 * np.count_nonzero(v < -900.0) / v.size)
    assert perc15(hu, lung) == pytest.approx(np.percentile(v, 15.0), abs=1e-6)
    assert perc15(hu, lung, percentile=50.0) == pytest.approx(np.median(v), abs=1e-6)
    assert lung_volume_ml(lung, SPACING) == pytest.approx(np.count_nonzero(sel) * VOXEL_ML)
    assert mean_lung_density(hu, lung) == pytest.approx(v.mean())
    assert lung_mass_g(hu, lung, SPACING) == pytest.approx(np.sum((v + 1000.0) / 1000.0) * VOXEL_ML)
    # paper 001's variant: (HU + 1024) / 1024
    assert lung_mass_g(hu, lung, SPACING, air_hu=-1024.0, mass_scale=1024.0) == pytest.approx(
        np.sum((v + 1024.0) / 1024.0) * VOXEL_ML
    )
    assert from_package is emphysema_measures


def test_threshold_is_strict_and_tiny_cases():
    hu = np.array([[[-1000.0, -950.0, -949.0, -960.0]]], np.float32)
    lung = np.ones(hu.shape, np.uint8)
    assert laa(hu, lung) == pytest.approx(50.0)  # -1000 and -960; -950 itself is not below
    # numpy 'linear': sorted [-1000, -960, -950, -949], pos = 3 * 0.15 = 0.45
    assert perc15(hu, lung) == pytest.approx(-1000.0 + 0.45 * 40.0)
    one = np.array([[[-900.0]]], np.float32)
    m = emphysema_measures(one, np.ones((1, 1, 1), np.uint8), (1.0, 1.0, 1.0))
    assert m["both"]["perc15_hu"] == -900.0 and m["both"]["mass_g"] == pytest.approx(0.1 * 0.001)


def test_empty_lung_is_nan_not_crash(case):
    hu, _ = case
    empty = np.zeros(hu.shape, np.uint8)
    m = emphysema_measures(hu, empty, SPACING)
    for side in ("both", "right", "left"):
        assert m[side]["volume_ml"] == 0.0
        assert all(math.isnan(m[side][k]) for k in ("laa_pct", "perc15_hu", "mean_hu", "mass_g"))
    only_right = np.zeros(hu.shape, np.uint8)
    only_right[2, 2, 2] = 1
    m = emphysema_measures(hu, only_right, SPACING)
    assert math.isnan(m["left"]["laa_pct"]) and m["right"]["mean_hu"] == pytest.approx(float(hu[2, 2, 2]))
    assert math.isnan(laa(hu, empty)) and math.isnan(perc15(hu, empty)) and lung_volume_ml(empty, SPACING) == 0.0


def test_torch_input_matches_numpy(case):
    hu, lung = case
    m_np = emphysema_measures(hu, lung, SPACING)
    m_t = emphysema_measures(torch.from_numpy(hu), torch.from_numpy(lung), SPACING)
    for side in m_np:
        for key in m_np[side]:
            assert m_t[side][key] == pytest.approx(m_np[side][key], rel=1e-12)


def test_mass_is_consistent_with_volume_and_mean(case):
    hu, lung = case
    m = emphysema_measures(hu, lung, SPACING)["both"]
    assert m["mass_g"] == pytest.approx(m["volume_ml"] * (m["mean_hu"] + 1000.0) / 1000.0, rel=1e-9)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differ"):
        emphysema_measures(np.zeros((2, 3, 3)), np.zeros((2, 3, 4), np.uint8), (1, 1, 1))
