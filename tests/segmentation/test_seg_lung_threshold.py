"""Threshold lung segmentation on synthetic phantoms, the project simulator and a real slice."""

from __future__ import annotations

import numpy as np
import pytest
from seg_phantoms import chest_phantom, dice

from ctharmonize.errors import ConfigError, DimensionError, NonFiniteError
from ctharmonize.io import Volume
from ctharmonize.segmentation import LUNG_BACKENDS, segment_lungs


@pytest.fixture(scope="module")
def soft():
    return chest_phantom(noise_sd=20.0, seed=1)


@pytest.fixture(scope="module")
def sharp():
    return chest_phantom(noise_sd=60.0, seed=2)


def test_backends_registered():
    assert {"threshold", "lungmask", "totalsegmentator"} <= set(LUNG_BACKENDS)


@pytest.mark.parametrize("name", ["soft", "sharp"])
def test_dice_on_phantom_soft_and_sharp(name, request):
    ph = request.getfixturevalue(name)
    mask = segment_lungs(ph.hu, spacing=ph.spacing)
    assert mask.dtype == np.uint8 and mask.shape == ph.hu.shape
    assert set(np.unique(mask)) == {0, 1, 2}
    assert dice(mask == 1, ph.lung == 1) >= 0.95
    assert dice(mask == 2, ph.lung == 2) >= 0.95
    # trachea and main bronchi are not lung
    assert np.count_nonzero(mask[ph.airway]) <= 0.05 * ph.airway.sum()


@pytest.mark.parametrize("padding", [-2048.0, -3024.0])
def test_outside_fov_padding(padding):
    ph = chest_phantom(noise_sd=60.0, padding=padding, fov_radius_mm=150.0, seed=3)
    assert (ph.hu == padding).any()
    mask = segment_lungs(ph.hu, spacing=ph.spacing)
    assert dice(mask == 1, ph.lung == 1) >= 0.95 and dice(mask == 2, ph.lung == 2) >= 0.95
    # the same image as a Volume whose reader replaced padding by air and kept a FOV mask
    fov = ph.hu != padding
    vol = Volume(np.where(fov, ph.hu, -1024.0), spacing=ph.spacing, fov_mask=fov)
    mask_v = segment_lungs(vol)
    assert dice(mask_v > 0, ph.lung > 0) >= 0.95


def test_left_right_follows_direction(sharp):
    # identity direction: column index increasing = patient left, so the right lung is at small x
    mask = segment_lungs(Volume(sharp.hu, spacing=sharp.spacing))
    xs1 = np.nonzero(mask == 1)[2].mean()
    xs2 = np.nonzero(mask == 2)[2].mean()
    assert xs1 < xs2
    # the same anatomy stored with the columns reversed (direction x = -1): labels follow anatomy
    flipped = Volume(sharp.hu[:, :, ::-1].copy(), spacing=sharp.spacing, direction=np.diag([-1.0, 1.0, 1.0]))
    mask_f = segment_lungs(flipped)
    truth_f = sharp.lung[:, :, ::-1]
    assert dice(mask_f == 1, truth_f == 1) >= 0.95 and dice(mask_f == 2, truth_f == 2) >= 0.95
    assert np.nonzero(mask_f == 1)[2].mean() > np.nonzero(mask_f == 2)[2].mean()


def test_head_at_first_slice_airway_still_removed(sharp):
    vol = Volume(sharp.hu[::-1].copy(), spacing=sharp.spacing, direction=np.diag([1.0, 1.0, -1.0]))
    mask = segment_lungs(vol)
    assert dice(mask > 0, sharp.lung[::-1] > 0) >= 0.95
    assert np.count_nonzero(mask[sharp.airway[::-1]]) <= 0.05 * sharp.airway.sum()
    # a plain array (direction unknown) works both ways up
    mask_a = segment_lungs(sharp.hu[::-1], spacing=sharp.spacing)
    assert np.count_nonzero(mask_a[sharp.airway[::-1]]) <= 0.05 * sharp.airway.sum()


@pytest.mark.parametrize("gap", [0.0, -12.0])
def test_joined_lungs_are_split(gap):
    ph = chest_phantom(noise_sd=40.0, lung_gap_mm=gap, seed=4)
    from scipy import ndimage

    assert ndimage.label(ph.lung > 0)[1] == 1  # the truth really is one joined component
    mask = segment_lungs(ph.hu, spacing=ph.spacing)
    assert dice(mask == 1, ph.lung == 1) >= 0.95 and dice(mask == 2, ph.lung == 2) >= 0.95


def test_mask_from_other_image(soft, sharp):
    mask = segment_lungs(sharp.hu, spacing=sharp.spacing, mask_from=soft.hu)
    assert np.array_equal(mask, segment_lungs(soft.hu, spacing=soft.spacing))
    with pytest.raises(DimensionError, match="mask_from shape"):
        segment_lungs(sharp.hu, spacing=sharp.spacing, mask_from=soft.hu[:-1])


def test_bad_inputs():
    with pytest.raises(ConfigError, match="unknown lung backend"):
        segment_lungs(np.zeros((2, 8, 8)), backend="nope")
    with pytest.raises(DimensionError, match="3-D"):
        segment_lungs(np.zeros((8, 8)))
    bad = np.zeros((2, 8, 8), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="NaN"):
        segment_lungs(bad, name="scan.nii.gz")
    # no body at all: empty mask, no crash
    assert not segment_lungs(np.full((3, 16, 16), -1000.0)).any()


def test_inputs_not_modified(sharp):
    hu = sharp.hu.copy()
    segment_lungs(hu, spacing=sharp.spacing)
    assert np.array_equal(hu, sharp.hu)


def _simulated(vendor):
    from ctharmonize.simulation import generate_phantom, simulate_scan

    ph = generate_phantom(seed=0, size=128, slices=16)
    return ph, simulate_scan(ph, vendor=vendor)


@pytest.mark.parametrize("vendor", ["siemens", "ge"])
def test_dice_on_simulator_soft_and_sharp_kernels(vendor):
    ph, vols = _simulated(vendor)
    assert len(vols) == 2  # the vendor's soft and sharp kernel
    for vol in vols.values():
        mask = segment_lungs(vol)
        for code in (1, 2):
            assert dice(mask == code, ph.lung == code) >= 0.95, (vol.header.kernel, code)


def test_real_ct_small_slice():
    """pydicom's CT_small.dcm: a 128x128 crop (85 mm) around a thoracic vertebra; the posterior
    lung bases show in the two upper corners, cut by the image border."""
    from pydicom.data import get_testdata_file

    from ctharmonize.io import read_volume

    vol = read_volume(get_testdata_file("CT_small.dcm"))
    mask = segment_lungs(vol)
    assert mask.shape == (1, 128, 128)
    assert set(np.unique(mask)) == {0, 1, 2}
    from scipy import ndimage

    for code in (1, 2):
        assert ndimage.label(mask[0] == code)[1] == 1
    ys1, xs1 = np.nonzero(mask[0] == 1)
    ys2, xs2 = np.nonzero(mask[0] == 2)
    assert xs1.mean() < 40 and xs2.mean() > 88  # right lung on the image left (patient right)
    assert ys1.mean() < 50 and ys2.mean() < 50  # both in the upper (anterior) corners
    lung_hu = vol.array[mask > 0]
    assert -950 < np.median(lung_hu) < -600  # parenchyma, not outside air
    assert np.median(vol.array[0, 100:, :][mask[0, 100:, :] == 0]) > -200  # the back is not lung


def test_real_head_slice_has_no_lungs():
    """pydicom's 693_J2KI.dcm is a head CT slice (GE STANDARD, -3995 HU outside the FOV): the small
    air of the frontal sinus must not become a lung."""
    from pydicom.data import get_testdata_file

    from ctharmonize.io import read_volume

    vol = read_volume(get_testdata_file("693_J2KI.dcm"))
    assert vol.shape == (1, 512, 512)
    assert not segment_lungs(vol).any()
