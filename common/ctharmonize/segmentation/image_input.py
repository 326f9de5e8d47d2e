"""Normalise a segmentation input (Volume or array) to HU array + geometry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctharmonize.errors import DimensionError, NonFiniteError
from ctharmonize.io.volume import Volume

__all__ = ["SegmentationInput", "as_segmentation_input", "PADDING_BELOW_HU"]

# Voxels below this value are outside-FOV padding (-2048, -3024 ...), never tissue or air.
PADDING_BELOW_HU = -1500.0


@dataclass
class SegmentationInput:
    """HU array (Z, Y, X) float32, spacing (sx, sy, sz) mm, FOV mask (bool, True inside) and
    direction (3x3, columns = LPS unit vectors of the column/row/slice axes)."""

    hu: np.ndarray
    spacing: tuple[float, float, float]
    fov: np.ndarray
    direction: np.ndarray
    name: str | None = None


def as_segmentation_input(image: Volume | np.ndarray, spacing=None, name: str | None = None) -> SegmentationInput:
    """Read HU, spacing, FOV and direction from a :class:`Volume` or a (Z, Y, X) HU array.

    ``spacing`` overrides the volume's spacing (default (1, 1, 1) mm for arrays). The FOV is
    ``volume.fov_mask`` when present, else every voxel above -1500 HU (padding values such as
    -2048 or -3024 are outside the FOV). Non-finite values raise :class:`NonFiniteError`.
    """
    if isinstance(image, Volume):
        hu = np.asarray(image.array, dtype=np.float32)
        sp = image.spacing if spacing is None else spacing
        direction = np.asarray(image.direction, dtype=float)
        fov = image.fov_mask
    else:
        try:
            hu = np.asarray(image, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise DimensionError(name, f"cannot read the image as a HU array: {err}") from err
        if hu.ndim != 3:
            raise DimensionError(name, f"expected a 3-D (Z, Y, X) HU array, got shape {hu.shape}")
        sp = (1.0, 1.0, 1.0) if spacing is None else spacing
        direction = np.eye(3)
        fov = None
    sp = tuple(float(s) for s in sp)
    if len(sp) != 3 or min(sp) <= 0:
        raise DimensionError(name, f"spacing must be three positive numbers (sx, sy, sz) mm, got {sp}")
    if not np.isfinite(hu).all():
        raise NonFiniteError(name, "image holds NaN or infinite values")
    padding = hu < PADDING_BELOW_HU
    fov = ~padding if fov is None else (np.asarray(fov, dtype=bool) & ~padding)
    return SegmentationInput(hu=hu, spacing=sp, fov=fov, direction=direction, name=name)
