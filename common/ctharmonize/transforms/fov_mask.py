"""Set voxels outside the reconstructed field of view (FOV) to a fill value."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from ctharmonize.errors import DimensionError
from ctharmonize.io.fov import AIR_HU, circular_fov_mask

__all__ = ["FOVMaskd"]


class FOVMaskd(MapTransform):
    """Dictionary transform: outside-FOV pixels of ``keys`` become ``fill_value``.

    The FOV mask (True = inside) is ``data[mask_key]`` when present, else the circle inscribed in
    each axial slice (:func:`ctharmonize.io.fov.circular_fov_mask`, radius
    ``radius_fraction`` x half the smaller in-plane size; None means 1.0). A provided mask must
    broadcast to the image, e.g. mask (Z, Y, X) for image (1, Z, Y, X); non-bool masks count
    as inside where > 0.

    Args:
        keys: image keys; arrays (..., Y, X), numpy or torch, HU or [-1, 1].
        mask_key: key of a provided FOV mask.
        fill_value: value written outside the FOV: -1024 (HU air) by default; use -1.0 when
            the transform runs after :class:`ScaleHUd` (air at the bottom of [-1, 1]).
        radius_fraction: radius of the fallback circle.
        store_mask: write the circular mask used into ``data[mask_key]`` when it was computed.
    """

    def __init__(self, keys: KeysCollection, mask_key: str = "fov_mask", fill_value: float = AIR_HU,
                 radius_fraction: float | None = None, store_mask: bool = False, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        if radius_fraction is not None and radius_fraction <= 0:
            raise ValueError(f"radius_fraction must be > 0, got {radius_fraction}")
        self.mask_key = mask_key
        self.fill_value = float(fill_value)
        self.radius_fraction = 1.0 if radius_fraction is None else float(radius_fraction)
        self.store_mask = store_mask

    def _mask_for(self, d: Mapping, key: Hashable, image) -> np.ndarray | torch.Tensor:
        provided = d.get(self.mask_key)
        if provided is None:
            if image.ndim < 2:
                raise DimensionError(None, f"{key!r}: image must have at least 2 dimensions (..., Y, X), "
                                           f"got shape {tuple(image.shape)}")
            mask = circular_fov_mask(tuple(image.shape[-2:]), radius_fraction=self.radius_fraction)
            return mask.reshape((1,) * (image.ndim - 2) + mask.shape)
        mask = provided if provided.dtype in (bool, torch.bool) else provided > 0
        try:
            np.broadcast_shapes(tuple(mask.shape), tuple(image.shape))
        except ValueError as err:
            raise DimensionError(None, f"FOV mask {self.mask_key!r} shape {tuple(mask.shape)} does not match "
                                       f"image {key!r} shape {tuple(image.shape)}") from err
        return mask

    def __call__(self, data: Mapping[Hashable, np.ndarray | torch.Tensor]) -> dict:
        d = dict(data)
        circle = None
        for key in self.key_iterator(d):
            image = d[key]
            mask = self._mask_for(d, key, image)
            if self.mask_key not in d or d[self.mask_key] is None:
                circle = np.broadcast_to(mask, tuple(image.shape))
            if isinstance(image, torch.Tensor):
                mask_t = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask,
                                         device=image.device)
                fill = torch.tensor(self.fill_value, dtype=image.dtype, device=image.device)
                out = torch.where(mask_t.as_subclass(torch.Tensor), image, fill)
            else:
                image = np.asarray(image)
                out = np.where(np.asarray(mask), image, np.asarray(self.fill_value, dtype=image.dtype))
            d[key] = out
        if self.store_mask and circle is not None:
            d[self.mask_key] = circle.copy()
        return d
