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
