"""Field-of-view masks for CT volumes.

Scanners fill voxels outside the reconstructed (circular) field of view with a padding value
far below air, most often -2048, -3024 or -2000 HU. :func:`detect_padding_mask` finds them;
:func:`circular_fov_mask` builds the inscribed-circle FOV mask used to train and run slice-wise
harmonization networks (multipath cycleGAN).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["PADDING_VALUES_HU", "AIR_HU", "detect_padding_mask", "fov_mask_from_padding", "circular_fov_mask"]

#: HU values that scanners use for voxels outside the reconstructed field of view.
PADDING_VALUES_HU: tuple[float, ...] = (-2048.0, -3024.0, -2000.0)

#: HU value written into ``Volume.array`` in place of outside-FOV padding.
AIR_HU: float = -1024.0


def detect_padding_mask(
    array_hu: np.ndarray,
    padding_values: Iterable[float] | None = PADDING_VALUES_HU,
    padding_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Bool mask, True where a voxel holds an outside-FOV padding value.

    Args:
        array_hu: image in **HU**, any shape.
        padding_values: exact HU values treated as padding (default -2048, -3024, -2000).
        padding_range: optional inclusive (low, high) HU range that is padding as well
            (DICOM Pixel Padding Value .. Pixel Padding Range Limit).

    Returns:
        bool array shaped like ``array_hu`` (True = padding, i.e. *outside* the FOV).
    """
    array_hu = np.asarray(array_hu)
    mask = np.zeros(array_hu.shape, dtype=bool)
    for value in padding_values or ():
        mask |= array_hu == value
    if padding_range is not None:
        low, high = sorted(padding_range)
        mask |= (array_hu >= low) & (array_hu <= high)
    return mask


def fov_mask_from_padding(array_hu: np.ndarray, **kwargs) -> np.ndarray | None:
    """The FOV mask (True *inside*) implied by padding voxels, or None when there are none.

    ``kwargs`` go to :func:`detect_padding_mask`.
    """
    padding = detect_padding_mask(array_hu, **kwargs)
    if not padding.any():
        return None
    return ~padding


def circular_fov_mask(
    shape: Sequence[int],
    radius_fraction: float = 1.0,
    center: Sequence[float] | None = None,
) -> np.ndarray:
    """Bool mask of the circle inscribed in each axial slice (True inside).

    Args:
        shape: ``(Y, X)`` for one slice or ``(Z, Y, X)`` for a volume (the same circle on
            every slice).
        radius_fraction: radius as a fraction of half the smaller in-plane size
            (1.0 = circle touching the nearer image edges).
        center: ``(y, x)`` centre in voxel index units; default the slice centre
            ``((Y - 1) / 2, (X - 1) / 2)``.

    Returns:
        bool array of ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must be (Y, X) or (Z, Y, X), got {shape}")
    if radius_fraction <= 0:
        raise ValueError(f"radius_fraction must be > 0, got {radius_fraction}")
    ny, nx = shape[-2:]
    cy, cx = ((ny - 1) / 2.0, (nx - 1) / 2.0) if center is None else (float(center[0]), float(center[1]))
    radius = radius_fraction * min(ny, nx) / 2.0
    yy = (np.arange(ny, dtype=np.float64) - cy)[:, None]
    xx = (np.arange(nx, dtype=np.float64) - cx)[None, :]
    disk = yy * yy + xx * xx <= radius * radius
    if len(shape) == 3:
        return np.broadcast_to(disk, shape).copy()
    return disk
