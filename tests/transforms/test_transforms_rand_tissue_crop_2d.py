import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctharmonize.errors import DimensionError
from ctharmonize.transforms import RandTissueCrop2Dd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crop_windows import find_window  # noqa: E402


def test_windows_are_centred_on_the_chosen_labels_and_shifted_inside():
    image = np.arange(12 * 14, dtype=np.float32).reshape(1, 12, 14)
    labels = np.zeros((1, 12, 14), np.int64)
    labels[0, 6, 7] = 5  # inside: window centred exactly there
    labels[0, 0, 13] = 9  # corner: window shifted inside
    labels[0, 3, 3] = 2  # another tissue: never a centre
    t = RandTissueCrop2Dd(["image", "labels"], "labels", [5, 9], roi_size=(4, 6)).set_random_state(1)
    seen = set()
    for _ in range(60):
        out = t({"image": image, "labels": torch.from_numpy(labels)})
        assert out["image"].shape == (1, 4, 6) and tuple(out["labels"].shape) == (1, 4, 6)
        (offset,) = find_window(image[0], out["image"][0])
        seen.add(offset)
        np.testing.assert_array_equal(np.asarray(out["labels"]), labels[:, offset[0]:offset[0] + 4, offset[1]:offset[1] + 6])
    # centre (6, 7) -> top-left (6 - 2, 7 - 3); corner (0, 13) -> (0, 14 - 6)
    assert seen == {(4, 4), (0, 8)}


def test_without_matching_pixels_the_window_is_uniform():
    image = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    t = RandTissueCrop2Dd(["image"], "labels", [5], roi_size=(2, 3)).set_random_state(0)
    seen = {find_window(image[0], t({"image": image, "labels": np.zeros((1, 5, 6), int)})["image"][0])[0]
            for _ in range(200)}
    assert seen == {(y, x) for y in range(4) for x in range(4)}


def test_errors():
    t = RandTissueCrop2Dd(["image"], "labels", [5], roi_size=(2, 2))
    with pytest.raises(DimensionError, match="'labels' of the tissue crop is missing"):
        t({"image": np.zeros((1, 4, 4))})
    with pytest.raises(DimensionError, match="channel-first"):
        t({"image": np.zeros((1, 4, 4)), "labels": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="at least one label"):
        RandTissueCrop2Dd(["image"], "labels", [], roi_size=2)
