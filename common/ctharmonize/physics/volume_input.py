"""The input checks every physics measurement shares: an HU volume, its spacing, FOV and body masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ctharmonize.errors import InputError
from ctharmonize.segmentation.body_mask import body_mask, smooth_hu

__all__ = ["MeasuredVolume", "measured_volume"]


@dataclass(frozen=True)
class MeasuredVolume:
    """``hu`` float32 (Z, Y, X) **HU**; ``spacing`` (sx, sy, sz) mm; ``fov`` and ``body`` bool (Z, Y, X)."""

    hu: np.ndarray
    spacing: tuple[float, float, float]
    fov: np.ndarray
    body: np.ndarray


def measured_volume(hu: np.ndarray, spacing: Sequence[float], fov_mask: np.ndarray | None = None,
                    body: np.ndarray | None = None) -> MeasuredVolume:
    """``hu`` ((Y, X) or (Z, Y, X) HU) as a (Z, Y, X) volume with its masks: ``fov_mask`` (None: all True) and
    ``body`` (None: :func:`~ctharmonize.segmentation.body_mask` of the volume smoothed by 1 pixel inside the FOV).
    ``spacing`` (sx, sy[, sz]) mm, sz 1 when absent. A one-line :class:`InputError` for another shape."""
    a = np.asarray(hu, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputError(None, f"expected a (Z, Y, X) volume or a (Y, X) slice, got shape {np.shape(hu)}")
    sx, sy = float(spacing[0]), float(spacing[1])
    sz = float(spacing[2]) if len(spacing) > 2 else 1.0
    fov = np.ones(a.shape, dtype=bool) if fov_mask is None else np.asarray(fov_mask, dtype=bool).reshape(a.shape)
    if body is None:
        body = body_mask(smooth_hu(a, 1.0, fov), (sx, sy, sz))
    return MeasuredVolume(a, (sx, sy, sz), fov, np.asarray(body, dtype=bool).reshape(a.shape))
