"""Find the axial slices that show enough lung (the lung-only slice filter of the training datasets)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.transforms import MapTransform

from ctharmonize.errors import DimensionError

__all__ = ["LungSlicesd"]


class LungSlicesd(MapTransform):
    """Dictionary transform: z indices of the slices whose lung fraction is > 0 and >= ``min_fraction``.

    The lung fraction of slice z is the number of lung pixels (``data[lung_key] > 0``) divided by the
    number of pixels of the slice. The result, int64 (N,) ascending (N may be 0), is written to
    ``data[indices_key]``; the mask itself is left unchanged.

    Args:
        lung_key: key of the lung mask, (Z, Y, X) or channel-first (1, Z, Y, X), numpy or torch.
        min_fraction: minimum lung fraction in [0, 1] (0: every slice with any lung).
        indices_key: key the indices are written to.
    """

    def __init__(self, lung_key: str = "lung", min_fraction: float = 0.0, indices_key: str = "slice_indices",
                 allow_missing_keys: bool = False):
        super().__init__(lung_key, allow_missing_keys)
        if not 0.0 <= float(min_fraction) <= 1.0:
            raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}")
        self.min_fraction = float(min_fraction)
        self.indices_key = indices_key

    def __call__(self, data: Mapping[Hashable, np.ndarray | torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            lung = d[key]
            lung = lung.detach().cpu().numpy() if isinstance(lung, torch.Tensor) else np.asarray(lung)
            if lung.ndim == 4 and lung.shape[0] == 1:
                lung = lung[0]
            if lung.ndim != 3:
                raise DimensionError(None, f"{key!r} must be (Z, Y, X) or (1, Z, Y, X), got shape {lung.shape}")
            fraction = (lung > 0).reshape(lung.shape[0], -1).mean(axis=1)
            d[self.indices_key] = np.flatnonzero((fraction > 0) & (fraction >= self.min_fraction)).astype(np.int64)
        return d
