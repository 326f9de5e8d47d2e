"""Set pixels outside the reconstructed field of view (FOV) to a fill value."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import ensure_tuple_rep

from ctharmonize.errors import DimensionError
from ctharmonize.io.fov import AIR_HU, circular_fov_mask

__all__ = ["FOVMaskd"]


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class FOVMaskd(MapTransform):
    """Dictionary transform: pixels of ``keys`` outside the FOV become ``fill_value``.

    The FOV (True = inside) is the intersection of

    * the provided mask ``data[mask_key]``, when present and not None (non-bool masks count as inside
      where > 0; it must broadcast to every keyed array, e.g. mask (Z, Y, X) for image (1, Z, Y, X)), and
    * with ``circular=True`` (paper 000: "enforcing circular FOVs"), the circle inscribed in each
      axial slice (:func:`ctharmonize.io.fov.circular_fov_mask`, radius ``radius_fraction`` x half the
      smaller in-plane size).

    With neither, every pixel is inside and the arrays are returned unchanged.

    Args:
        keys: arrays (..., Y, X), numpy or torch (MetaTensors stay MetaTensors), HU, [-1, 1] or labels.
        mask_key: key of the provided FOV mask.
        fill_value: value written outside the FOV, one for all keys or one per key: -1024 (HU air) by
            default, -1.0 after :class:`ScaleHUd`, 0 for label maps.
        circular: intersect with the inscribed circle.
        radius_fraction: radius of that circle (1.0: it touches the nearer image edges).
        store_mask: write the FOV used into ``data[mask_key]``: bool, broadcast to the shape of the first
            keyed array (numpy for numpy input, torch for torch input).
    """

    def __init__(self, keys: KeysCollection, mask_key: str = "fov_mask", fill_value: float | Sequence[float] = AIR_HU,
                 circular: bool = True, radius_fraction: float = 1.0, store_mask: bool = False,
                 allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        if radius_fraction <= 0:
            raise ValueError(f"radius_fraction must be > 0, got {radius_fraction}")
        self.mask_key = mask_key
        self.fill_value = tuple(float(f) for f in ensure_tuple_rep(fill_value, len(self.keys)))
        self.circular = bool(circular)
        self.radius_fraction = float(radius_fraction)
        self.store_mask = store_mask

    def _fov(self, provided: np.ndarray | None, key: Hashable, shape: tuple[int, ...]) -> np.ndarray | None:
        """Bool FOV broadcastable to ``shape``, or None when everything is inside."""
        if len(shape) < 2:
            raise DimensionError(None, f"{key!r}: array must have at least 2 dimensions (..., Y, X), got shape {shape}")
        mask = provided
        if mask is not None:
            try:
                np.broadcast_shapes(mask.shape, shape)
            except ValueError as err:
                raise DimensionError(None, f"FOV mask {self.mask_key!r} shape {mask.shape} does not match "
                                           f"{key!r} shape {shape}") from err
        if self.circular:
            circle = circular_fov_mask(shape[-2:], radius_fraction=self.radius_fraction)
            mask = circle if mask is None else mask & circle
        return mask

    def __call__(self, data: Mapping[Hashable, np.ndarray | torch.Tensor]) -> dict:
        d = dict(data)
        provided = d.get(self.mask_key)
        if provided is not None:
            provided = _numpy(provided)
            provided = provided if provided.dtype == bool else provided > 0
        stored = None
        for key, fill in self.key_iterator(d, self.fill_value):
            image = d[key]
            shape = tuple(image.shape)
            mask = self._fov(provided, key, shape)
            if stored is None:
                full = np.ones(shape, dtype=bool) if mask is None else np.broadcast_to(mask, shape).copy()
                stored = torch.from_numpy(full).to(image.device) if isinstance(image, torch.Tensor) else full
            if mask is None:
                continue
            if isinstance(image, torch.Tensor):
                inside = torch.from_numpy(np.ascontiguousarray(mask)).to(image.device)
                d[key] = torch.where(inside, image, torch.tensor(fill, dtype=image.dtype, device=image.device))
            else:
                image = np.asarray(image)
                d[key] = np.where(mask, image, np.asarray(fill, dtype=image.dtype))
        if self.store_mask and stored is not None:
            d[self.mask_key] = stored
        return d
