"""Threshold body composition on simulated CT (soft and sharp kernel of one subject): Dice against
the simulator's tissue labels and between the two kernels, computed here with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from ctharmonize.segmentation import body_composition
from ctharmonize.simulation import generate_phantom, simulate_scan


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float(2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


@pytest.fixture(scope="module")
def siemens_scan():
    ph = generate_phantom(0, size=128, slices=16)
    vols = simulate_scan(ph, vendor="siemens")
    labels = {k: body_composition(v) for k, v in vols.items()}
    return ph, labels


@pytest.mark.parametrize("kernel", ["siemens_b30f", "siemens_b50f"])
def test_muscle_and_sat_match_the_simulated_truth(siemens_scan, kernel):
    ph, labels = siemens_scan
    lab = labels[kernel]
    assert _dice(lab == 5, ph.labels == 5) >= 0.87  # skeletal muscle
    assert _dice(lab == 6, ph.labels == 6) >= 0.85  # subcutaneous fat
    assert _dice(lab == 7, ph.labels == 7) >= 0.7  # visceral / intermuscular fat
    # heart, aorta and oesophagus (soft tissue in the muscle HU range) are never skeletal muscle
    organs = np.isin(ph.labels, (10, 11, 12))
    assert np.count_nonzero(lab[organs] == 5) <= 0.01 * np.count_nonzero(organs)


def test_soft_and_sharp_kernel_give_the_same_labels(siemens_scan):
    _, labels = siemens_scan
    soft, sharp = labels["siemens_b30f"], labels["siemens_b50f"]
    assert _dice(soft == 5, sharp == 5) >= 0.92
    assert _dice(soft == 6, sharp == 6) >= 0.93
