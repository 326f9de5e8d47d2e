"""Random fixed-size 2-D crop centred on a pixel of chosen tissue labels, the same window for every key."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection

from ctharmonize.errors import DimensionError
from ctharmonize.transforms.rand_crop_2d import RandCrop2Dd

__all__ = ["RandTissueCrop2Dd"]


class RandTissueCrop2Dd(RandCrop2Dd):
    """Dictionary transform: crop every keyed (C, Y, X) array to ``roi_size`` around ONE random pixel of
    ``label_key`` whose value is in ``labels`` (e.g. the soft-tissue codes 5, 6, 7, 9 for CVS-CT's
    soft-tissue patches, paper 002).

    The centre pixel is uniform over the matching pixels of channel 0 of ``label_key`` (drawn with
    ``self.R``); the window of ``roi_size`` is centred on it (top-left = centre − size // 2) and shifted
    inside the image where it would leave it, so the crop always has ``roi_size``. A slice without any
    matching pixel gets a uniform random window (as :class:`RandCrop2Dd`). ``label_key`` is cropped too
    when it is one of ``keys``. Checks and value handling as :class:`RandCrop2Dd`.

    Args:
        keys: keys of (C, Y, X) arrays.
        label_key: key of the (C, Y, X) integer label map the centre is drawn from.
        labels: label values a centre may have.
        roi_size: (height, width) of the crop in pixels.
    """

    def __init__(self, keys: KeysCollection, label_key: Hashable, labels: Sequence[int], roi_size: Sequence[int] | int,
                 allow_missing_keys: bool = False):
        super().__init__(keys, roi_size, allow_missing_keys)
        if not labels:
            raise ValueError("labels must name at least one label value")
        self.label_key = label_key
        self.labels = [int(v) for v in labels]
        self._centre_map: np.ndarray | None = None

    def randomize(self, size: Sequence[int]) -> None:
        """Draw the window for slices of ``size`` (Y, X) around a matching pixel of the current label map."""
        mask = self._centre_map
        if mask is None or not mask.any():
            super().randomize(size)
            return
        ys, xs = np.nonzero(mask)
        k = int(self.R.randint(len(ys)))
        top = min(max(int(ys[k]) - self.roi_size[0] // 2, 0), int(size[0]) - self.roi_size[0])
        left = min(max(int(xs[k]) - self.roi_size[1] // 2, 0), int(size[1]) - self.roi_size[1])
        self._window = (slice(top, top + self.roi_size[0]), slice(left, left + self.roi_size[1]))

    def __call__(self, data: Mapping[Hashable, np.ndarray | torch.Tensor]) -> dict:
        if self.label_key not in data:
            if self.allow_missing_keys:
                self._centre_map = None
                return super().__call__(data)
            raise DimensionError(None, f"the label map {self.label_key!r} of the tissue crop is missing")
        labels = data[self.label_key]
        labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        if labels.ndim != 3:
            raise DimensionError(None, f"{self.label_key!r} must be a channel-first 2-D array (C, Y, X), got shape "
                                       f"{labels.shape}")
        self._centre_map = np.isin(labels[0], self.labels)
        try:
            return super().__call__(data)
        finally:
            self._centre_map = None
