"""Threshold body composition on a phantom with known muscle / SAT / VAT / bone regions."""

from __future__ import annotations

import numpy as np
import pytest
from seg_phantoms import chest_phantom, dice

from ctharmonize.errors import ConfigError, DimensionError
from ctharmonize.segmentation import BODY_BACKENDS, body_composition, segment_lungs


@pytest.mark.parametrize("noise_sd", [20.0, 60.0])
def test_dice_per_class(noise_sd):
    ph = chest_phantom(noise_sd=noise_sd, size=128, spacing=(2.6, 2.6, 5.0), slices=24, seed=7)
    lab = body_composition(ph.hu, spacing=ph.spacing)
    assert lab.dtype == np.uint8 and lab.shape == ph.hu.shape
    assert dice(lab == 5, ph.muscle) >= 0.9
    assert dice(lab == 6, ph.sat) >= 0.93
    assert dice(lab == 7, ph.vat) >= 0.9
    assert dice(lab == 8, ph.bone) >= 0.9
    assert dice(lab == 1, ph.lung == 1) >= 0.95 and dice(lab == 2, ph.lung == 2) >= 0.95
    outside = np.sqrt(((np.indices(ph.hu.shape[1:]) - 63.5) ** 2).sum(0)) > 62  # image corners: air
    assert not lab[:, outside].any()
    assert "threshold" in BODY_BACKENDS


def test_given_lung_mask_is_used_and_excluded():
    ph = chest_phantom(noise_sd=20.0, seed=8)
    lab = body_composition(ph.hu, spacing=ph.spacing, lung=ph.lung)
    assert np.array_equal(lab == 1, ph.lung == 1) and np.array_equal(lab == 2, ph.lung == 2)
    no_lungs = body_composition(ph.hu, spacing=ph.spacing, lung=ph.lung, include_lungs=False)
    assert not no_lungs[ph.lung > 0].any()
    with pytest.raises(DimensionError, match="lung mask shape"):
        body_composition(ph.hu, spacing=ph.spacing, lung=ph.lung[:-1])
    with pytest.raises(ConfigError, match="unknown body-composition backend"):
        body_composition(ph.hu, backend="magic")


def test_fat_thresholds_are_the_documented_ones():
    """Noise-free rings: fat (-100 HU) outside a muscle wall (50 HU) around a 1.5 mm bone ring
    enclosing organ tissue (20 HU); the bone is thin, so the cage wall is 2 mm here."""
    hu = np.full((3, 64, 64), -1000.0, np.float32)
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 31.5, xx - 31.5)
    hu[:, r < 28] = -100.0  # subcutaneous fat
    hu[:, r < 20] = 50.0  # muscle wall
    hu[:, r < 14] = 20.0  # cavity organs, inside a closed bone ring
    ring = (r >= 12.5) & (r < 14)
    hu[:, ring] = 700.0
    lab = body_composition(hu, spacing=(1.0, 1.0, 2.0), lung=np.zeros(hu.shape, np.uint8), cage_wall_mm=2.0)
    mid = lab[1]
    assert (mid[(r > 21) & (r < 24)] == 6).all()  # inside the fat ring, below the 2 mm skin + blur
    assert (mid[(r > 15.5) & (r < 18.5)] == 5).all()
    assert (mid[ring & (r > 13) & (r < 13.6)] == 8).all()
    assert (mid[r < 8] == 9).all()  # cavity soft tissue is not muscle


def test_real_ct_small_slice_is_plausible():
    from pydicom.data import get_testdata_file

    from ctharmonize.io import read_volume

    vol = read_volume(get_testdata_file("CT_small.dcm"))
    lab = body_composition(vol)
    lung = segment_lungs(vol)
    assert np.array_equal(lab == 1, lung == 1)
    # the vertebra is bone, the paraspinal muscles (below it in the image) are muscle
    assert (lab[0, 30:40, 50:70] == 8).mean() > 0.5
    assert (lab[0, 95:110, 50:90] == 5).mean() > 0.5


def test_superficial_muscle_touching_the_wall_is_muscle_a_gland_in_the_fat_is_not():
    """Noise-free rings as above (wider fat), plus in the subcutaneous fat a soft-tissue layer 2.5 mm
    off the muscle wall (a pectoralis on its fat plane) and a soft-tissue blob 4.5 mm away from it (breast glandular tissue)."""
    hu = np.full((3, 80, 80), -1000.0, np.float32)
    yy, xx = np.mgrid[:80, :80]
    r = np.hypot(yy - 39.5, xx - 39.5)
    hu[:, r < 38] = -100.0
    hu[:, r < 20] = 50.0
    hu[:, r < 14] = 20.0
    ring = (r >= 12.5) & (r < 14)
    hu[:, ring] = 700.0
    layer = (r >= 22.5) & (r < 27) & (yy < 28) & (np.abs(xx - 39.5) < 10)  # 2.5 mm of fat off the wall
    gland = np.hypot(yy - 69.0, xx - 39.5) < 5.0  # posterior, 24.5-34.5 mm from the centre (~80 mm^2)
    hu[:, layer | gland] = 45.0
    kwargs = {"spacing": (1.0, 1.0, 2.0), "lung": np.zeros(hu.shape, np.uint8), "cage_wall_mm": 2.0}
    lab = body_composition(hu, **kwargs)[1]
    assert (lab[layer & (r < 26)] == 5).mean() > 0.9  # the superficial layer is muscle (corner pixels aside)
    assert (lab[gland & (np.hypot(yy - 69.0, xx - 39.5) < 3.0)] == 9).all()  # separated by fat: not muscle
    assert (lab[(r > 15.5) & (r < 18.5)] == 5).all()
    off = body_composition(hu, superficial_gap_mm=0.0, **kwargs)[1]
    assert (off[layer] == 9).mean() > 0.9 and not (off[layer] == 5).any()  # without the rule it is "other"
