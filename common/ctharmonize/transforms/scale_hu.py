"""HU window scaling: HU clipped to ``[hu_min, hu_max]`` <-> network space ``[-1, 1]``.

``y = 2 (clip(x, hu_min, hu_max) - hu_min) / (hu_max - hu_min) - 1`` and its inverse
``x = (y + 1) / 2 (hu_max - hu_min) + hu_min``. The inverse is exact (to float precision) for HU
inside the window; HU outside it come back as the window edge.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import InvertibleTransform, MapTransform

__all__ = ["HU_MIN", "HU_MAX", "hu_to_unit", "unit_to_hu", "ScaleHUd"]

HU_MIN = -1024.0
HU_MAX = 3072.0

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _check_window(hu_min: float, hu_max: float) -> None:
    if not hu_max > hu_min:
        raise ValueError(f"HU window must have hu_max > hu_min, got [{hu_min}, {hu_max}]")


def _floating(x):
    """Tensors keep a floating dtype (so gradients flow); numpy becomes float64 for the arithmetic."""
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.float()
    return np.asarray(x, dtype=np.float64)


def hu_to_unit(x: ArrayT, hu_min: float = HU_MIN, hu_max: float = HU_MAX) -> ArrayT:
    """HU -> [-1, 1]: clip to the window and scale linearly.

    Works on numpy arrays (returns float32) and torch tensors (keeps a floating dtype,
    device and autograd); any shape.
    """
    _check_window(hu_min, hu_max)
    x = _floating(x)
    scale = 2.0 / (hu_max - hu_min)
    if isinstance(x, torch.Tensor):
        return torch.clamp(x, hu_min, hu_max).sub(hu_min).mul(scale).sub(1.0)
    return ((np.clip(x, hu_min, hu_max) - hu_min) * scale - 1.0).astype(np.float32)


def unit_to_hu(y: ArrayT, hu_min: float = HU_MIN, hu_max: float = HU_MAX, clip: bool = True) -> ArrayT:
    """[-1, 1] -> HU, the inverse of :func:`hu_to_unit`.

    With ``clip=True`` (default) values outside [-1, 1] (e.g. a network's overshoot) are
    clipped first, so the result stays inside the HU window. Numpy gives float32; tensors keep
    their floating dtype, device and autograd.
    """
    _check_window(hu_min, hu_max)
    y = _floating(y)
    half = (hu_max - hu_min) / 2.0
    if isinstance(y, torch.Tensor):
        y = torch.clamp(y, -1.0, 1.0) if clip else y
        return y.add(1.0).mul(half).add(hu_min)
    y = np.clip(y, -1.0, 1.0) if clip else y
    return ((y + 1.0) * half + hu_min).astype(np.float32)


class ScaleHUd(MapTransform, InvertibleTransform):
    """Dictionary transform: HU -> [-1, 1] for ``keys`` (see :func:`hu_to_unit`).

    ``inverse()`` maps [-1, 1] back to HU with the same window (:func:`unit_to_hu`, values outside
    [-1, 1] clipped first): the way to bring a network's output to HU, alone or inside
    ``Compose.inverse`` / ``Invertd``. The transform has no random or data-dependent state, so
    nothing is recorded in ``applied_operations``.

    Example: ``ScaleHUd("image")({"image": hu})["image"]`` is ``hu_to_unit(hu)``, and
    ``ScaleHUd("pred").inverse({"pred": y})["pred"]`` is ``unit_to_hu(y)``.
    """

    def __init__(self, keys: KeysCollection, hu_min: float = HU_MIN, hu_max: float = HU_MAX,
                 allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        _check_window(hu_min, hu_max)
        self.hu_min, self.hu_max = float(hu_min), float(hu_max)

    def __call__(self, data: Mapping[Hashable, ArrayT]) -> dict[Hashable, ArrayT]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = hu_to_unit(d[key], self.hu_min, self.hu_max)
        return d

    def inverse(self, data: Mapping[Hashable, ArrayT]) -> dict[Hashable, ArrayT]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = unit_to_hu(d[key], self.hu_min, self.hu_max)
        return d

