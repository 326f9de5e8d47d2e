"""Random fixed-size 2-D crop, the same window for every key."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import RandSpatialCropd

from ctharmonize.errors import DimensionError

__all__ = ["RandCrop2Dd"]


class RandCrop2Dd(RandSpatialCropd):
    """MONAI :class:`~monai.transforms.RandSpatialCropd` restricted to 2-D, fixed-size crops.

    Adds to MONAI: ``roi_size`` must be two positive ints, and every keyed array must be
    channel-first (C, Y, X) and at least ``roi_size`` large (MONAI would silently return a
    smaller crop, breaking batching); violations raise :class:`DimensionError`. The crop
    window is drawn once per call (from the first key) and applied to all keys; values are
    unchanged (HU or [-1, 1]). Outputs are MetaTensors; ``inverse()`` pads back (MONAI).

    Args:
        keys: keys of (C, Y, X) arrays.
        roi_size: (height, width) of the crop in pixels.
    """

    def __init__(self, keys: KeysCollection, roi_size: Sequence[int] | int, allow_missing_keys: bool = False):
        size = (roi_size, roi_size) if isinstance(roi_size, int) else tuple(roi_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"roi_size must be two positive ints (height, width), got {roi_size!r}")
        super().__init__(keys, roi_size=size, random_center=True, random_size=False,
                         allow_missing_keys=allow_missing_keys)
        self.roi_size = size

    def __call__(self, data: Mapping[Hashable, torch.Tensor], lazy: bool | None = None) -> dict:
        for key in self.key_iterator(dict(data)):
            shape = tuple(data[key].shape)
            if len(shape) != 3:
                raise DimensionError(None, f"{key!r} must be a channel-first 2-D array (C, Y, X), got shape {shape}")
            if shape[1] < self.roi_size[0] or shape[2] < self.roi_size[1]:
                raise DimensionError(None, f"{key!r} of size {shape[1:]} is smaller than the crop {self.roi_size}")
        return super().__call__(data, lazy=lazy)
