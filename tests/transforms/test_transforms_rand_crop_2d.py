import numpy as np
import pytest
import torch

from ctharmonize.errors import DimensionError
from ctharmonize.transforms import RandCrop2Dd


def _find_window(full, crop):
    """Offsets (y, x) where crop occurs in full (independent brute force)."""
    h, w = crop.shape
    return [(y, x) for y in range(full.shape[0] - h + 1) for x in range(full.shape[1] - w + 1)
            if np.array_equal(full[y:y + h, x:x + w], crop)]


def test_same_window_for_all_keys_and_all_positions_reachable():
    a = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    t = RandCrop2Dd(["a", "b"], roi_size=(2, 3))
    t.set_random_state(seed=0)
    seen = set()
    for _ in range(200):
        out = t({"a": a, "b": torch.from_numpy(a + 100), "kernel": "ge_bone"})
        ca, cb = np.asarray(out["a"]), np.asarray(out["b"])
        assert ca.shape == (1, 2, 3) and out["kernel"] == "ge_bone"
        np.testing.assert_array_equal(cb, ca + 100)
        (offset,) = _find_window(a[0], ca[0])
        seen.add(offset)
    assert seen == {(y, x) for y in range(4) for x in range(4)}


def test_seeded_and_inverse_restores_shape():
    a = np.random.default_rng(0).normal(size=(1, 9, 9)).astype(np.float32)
    c1 = RandCrop2Dd("a", 4).set_random_state(5)({"a": a})
    c2 = RandCrop2Dd("a", 4).set_random_state(5)({"a": a})
    np.testing.assert_array_equal(np.asarray(c1["a"]), np.asarray(c2["a"]))
    t = RandCrop2Dd("a", 4).set_random_state(5)
    inv = t.inverse(t({"a": a}))
    assert tuple(inv["a"].shape) == (1, 9, 9)


def test_errors():
    with pytest.raises(DimensionError, match="channel-first"):
        RandCrop2Dd("a", 2)({"a": np.zeros((1, 4, 4, 4))})
    with pytest.raises(DimensionError, match="smaller than the crop"):
        RandCrop2Dd("a", (8, 2))({"a": np.zeros((1, 4, 4))})
    for bad in ((2, 2, 2), (0, 4), (2.5, 3)):
        with pytest.raises(ValueError):
            RandCrop2Dd("a", bad)
