"""Random fixed-size 2-D crop, the same window for every key."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data.utils import get_random_patch
from monai.transforms import MapTransform, Randomizable

from ctharmonize.errors import DimensionError

__all__ = ["RandCrop2Dd"]


class RandCrop2Dd(Randomizable, MapTransform):
    """Dictionary transform: crop every keyed (C, Y, X) array to ``roi_size`` at ONE random position.

    The window's top-left corner is uniform over every position where the crop fits, drawn once per
    call with ``self.R`` (MONAI's ``get_random_patch``: the same draws as ``RandSpatialCropd`` with
    ``random_size=False``; seed with ``set_random_state``), and applied to all keys. The keyed arrays
    must share their (Y, X) size and be at least ``roi_size``; otherwise :class:`DimensionError`
    (MONAI would silently return a smaller crop, breaking batching). Values and types are unchanged
    (numpy stays numpy, tensors stay tensors, HU or [-1, 1], any dtype); the crop is a view. For
    training; it records nothing for ``inverse``.

    Args:
        keys: keys of (C, Y, X) arrays.
        roi_size: (height, width) of the crop in pixels.
    """

    def __init__(self, keys: KeysCollection, roi_size: Sequence[int] | int, allow_missing_keys: bool = False):
        MapTransform.__init__(self, keys, allow_missing_keys)
        size = (roi_size, roi_size) if isinstance(roi_size, int) else tuple(roi_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"roi_size must be two positive ints (height, width), got {roi_size!r}")
        self.roi_size: tuple[int, int] = size  # type: ignore[assignment]
        self._window: tuple[slice, slice] = (slice(None), slice(None))

    def randomize(self, size: Sequence[int]) -> None:
        """Draw the window for slices of ``size`` (Y, X)."""
        self._window = get_random_patch(tuple(size), self.roi_size, self.R)  # type: ignore[assignment]

    def __call__(self, data: Mapping[Hashable, np.ndarray | torch.Tensor]) -> dict:
        d = dict(data)
        keys = list(self.key_iterator(d))
        sizes = set()
        for key in keys:
            shape = tuple(d[key].shape)
            if len(shape) != 3:
                raise DimensionError(None, f"{key!r} must be a channel-first 2-D array (C, Y, X), got shape {shape}")
            if shape[1] < self.roi_size[0] or shape[2] < self.roi_size[1]:
                raise DimensionError(None, f"{key!r} of size {shape[1:]} is smaller than the crop {self.roi_size}")
            sizes.add(shape[1:])
        if len(sizes) > 1:
            raise DimensionError(None, f"keys {keys} differ in size ({', '.join(map(str, sizes))}); one crop needs one size")
        if not keys:
            return d
        self.randomize(sizes.pop())
        ys, xs = self._window
        for key in keys:
            d[key] = d[key][:, ys, xs]
        return d
