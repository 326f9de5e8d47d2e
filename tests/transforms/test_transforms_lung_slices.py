import numpy as np
import pytest
import torch

from ctharmonize.errors import DimensionError
from ctharmonize.transforms import LungSlicesd


def _lung_volume():
    """(8, 10, 10) mask with hand-set lung fractions: slice 2 10 %, 5 50 % (code 2), 6 30 %, 7 12 %."""
    lung = np.zeros((8, 10, 10), np.uint8)
    lung[2, :1, :] = 1
    lung[5, :5, :] = 2
    lung[6, :3, :] = 1
    lung[7, 4, :] = 1
    lung[7, 5, :2] = 1
    return lung


def test_threshold_by_hand_fractions():
    lung = _lung_volume()
    out = LungSlicesd("lung", min_fraction=0.25)({"lung": lung, "image": "untouched"})
    assert out["slice_indices"].tolist() == [5, 6]
    assert out["slice_indices"].dtype == np.int64 and out["image"] == "untouched"
    assert out["lung"] is lung
    # the boundary is inclusive: slice 7 has exactly 12 / 100 lung pixels
    assert LungSlicesd("lung", min_fraction=0.12)({"lung": lung})["slice_indices"].tolist() == [5, 6, 7]
    assert LungSlicesd("lung", min_fraction=0.121)({"lung": lung})["slice_indices"].tolist() == [5, 6]


def test_zero_threshold_means_any_lung_and_none_found_is_empty():
    lung = _lung_volume()
    assert LungSlicesd("lung")({"lung": lung})["slice_indices"].tolist() == [2, 5, 6, 7]
    empty = LungSlicesd("lung", min_fraction=0.6)({"lung": lung})["slice_indices"]
    assert empty.shape == (0,)


def test_channel_first_torch_mask_and_custom_key():
    lung = torch.from_numpy(_lung_volume()).bool()[None]
    out = LungSlicesd("m", min_fraction=0.3, indices_key="z")({"m": lung})
    assert out["z"].tolist() == [5, 6]


def test_errors():
    with pytest.raises(DimensionError, match=r"\(Z, Y, X\)"):
        LungSlicesd("lung")({"lung": np.zeros((2, 2, 4, 4))})
    with pytest.raises(ValueError):
        LungSlicesd("lung", min_fraction=1.5)
    with pytest.raises(KeyError):
        LungSlicesd("lung")({"image": np.zeros((2, 4, 4))})
