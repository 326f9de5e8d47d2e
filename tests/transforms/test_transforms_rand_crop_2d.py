import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctharmonize.errors import DimensionError
from ctharmonize.transforms import RandCrop2Dd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crop_windows import find_window  # noqa: E402


def test_same_window_for_all_keys_and_all_positions_reachable():
    a = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    t = RandCrop2Dd(["a", "b"], roi_size=(2, 3))
    t.set_random_state(seed=0)
    seen = []
    for _ in range(320):
        out = t({"a": a, "b": torch.from_numpy(a + 100), "kernel": "ge_bone"})
        ca, cb = np.asarray(out["a"]), np.asarray(out["b"])
        assert ca.shape == (1, 2, 3) and out["kernel"] == "ge_bone"
        np.testing.assert_array_equal(cb, ca + 100)
        (offset,) = find_window(a[0], ca[0])
        seen.append(offset)
    counts = {w: seen.count(w) for w in set(seen)}
    assert set(counts) == {(y, x) for y in range(4) for x in range(4)}  # every position, about equally often
    assert min(counts.values()) >= 8 and max(counts.values()) <= 35, counts


def test_seeded_draws_match_monai_rand_spatial_crop_and_types_are_kept():
    from monai.transforms import RandSpatialCropd

    a = np.random.default_rng(0).normal(size=(1, 9, 11)).astype(np.float32)
    ours = RandCrop2Dd("a", (4, 5)).set_random_state(5)
    monai = RandSpatialCropd("a", roi_size=(4, 5), random_size=False).set_random_state(5)
    for _ in range(10):
        mine = ours({"a": a})["a"]
        assert type(mine) is np.ndarray and mine.dtype == np.float32
        np.testing.assert_array_equal(mine, np.asarray(monai({"a": a})["a"]))
    t = RandCrop2Dd("a", 4).set_random_state(5)({"a": torch.from_numpy(a)})["a"]
    assert type(t) is torch.Tensor and t.shape == (1, 4, 4)


def test_errors():
    with pytest.raises(DimensionError, match="channel-first"):
        RandCrop2Dd("a", 2)({"a": np.zeros((1, 4, 4, 4))})
    with pytest.raises(DimensionError, match="smaller than the crop"):
        RandCrop2Dd("a", (8, 2))({"a": np.zeros((1, 4, 4))})
    with pytest.raises(DimensionError, match="differ in size"):
        RandCrop2Dd(["a", "b"], 2)({"a": np.zeros((1, 4, 4)), "b": np.zeros((1, 4, 5))})
    for bad in ((2, 2, 2), (0, 4), (2.5, 3)):
        with pytest.raises(ValueError):
            RandCrop2Dd("a", bad)


def test_one_window_per_transform_in_a_seeded_compose():
    """Two RandCrop2Dd in one Compose crop independently; each crops all its keys (any dtype) alike."""
    from monai.transforms import Compose

    a = np.arange(12 * 12, dtype=np.float32).reshape(1, 12, 12)
    data = {"a": torch.from_numpy(a), "a_fov": torch.from_numpy(a % 2 == 0), "b": torch.from_numpy(a.astype(np.int64))}
    pipeline = Compose([RandCrop2Dd(["a", "a_fov"], (3, 3)), RandCrop2Dd("b", (3, 3))])
    offsets = []
    for seed in range(20):
        out = pipeline.set_random_state(seed)(data)
        assert out["a_fov"].dtype == torch.bool and out["b"].dtype == torch.int64
        np.testing.assert_array_equal(out["a_fov"].numpy(), out["a"].numpy() % 2 == 0)
        (wa,) = find_window(a[0], out["a"].numpy()[0])
        (wb,) = find_window(a[0], out["b"].numpy()[0].astype(np.float32))
        offsets.append((wa, wb))
    assert any(wa != wb for wa, wb in offsets)
    again = pipeline.set_random_state(7)(data)
    np.testing.assert_array_equal(again["a"].numpy(), pipeline.set_random_state(7)(data)["a"].numpy())
