"""Rasterise 3-D tubes (segments with a radius) and spheres onto a voxel grid, in bounding boxes."""

from __future__ import annotations

import numpy as np

__all__ = ["Grid", "segment_mask", "sphere_mask"]


class Grid:
    """Voxel-centre coordinates of a (Z, Y, X) grid in mm: ``z[k]``, ``y[j]``, ``x[i]``."""

    def __init__(self, z: np.ndarray, y: np.ndarray, x: np.ndarray):
        self.z, self.y, self.x = (np.asarray(v, float) for v in (z, y, x))
        self.shape = (self.z.size, self.y.size, self.x.size)

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices of voxels whose centres lie in [lo, hi] (mm, order z, y, x); None if empty."""
        out = []
        for axis, low, h in zip((self.z, self.y, self.x), lo, hi, strict=True):
            step = axis[1] - axis[0] if axis.size > 1 else 1.0
            i0 = int(np.ceil((low - axis[0]) / step))
            i1 = int(np.floor((h - axis[0]) / step)) + 1
            i0, i1 = max(i0, 0), min(i1, axis.size)
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)  # type: ignore[return-value]


def segment_mask(grid: Grid, a: np.ndarray, b: np.ndarray, radius: float):
    """(slices, bool mask) of voxels within ``radius`` mm of the segment a-b (points in z, y, x mm)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    sl = grid.box(np.minimum(a, b) - radius, np.maximum(a, b) + radius)
    if sl is None:
        return None, None
    z = grid.z[sl[0]][:, None, None] - a[0]
    y = grid.y[sl[1]][None, :, None] - a[1]
    x = grid.x[sl[2]][None, None, :] - a[2]
    d = b - a
    dd = float(d @ d) or 1e-12
    t = np.clip((z * d[0] + y * d[1] + x * d[2]) / dd, 0.0, 1.0)
    dist2 = (z - t * d[0]) ** 2 + (y - t * d[1]) ** 2 + (x - t * d[2]) ** 2
    return sl, dist2 <= radius * radius


def sphere_mask(grid: Grid, c: np.ndarray, radii: np.ndarray | float):
    """(slices, bool mask) of voxels inside the axis-aligned ellipsoid centred at c with radii (z, y, x mm)."""
    c = np.asarray(c, float)
    r = np.broadcast_to(np.asarray(radii, float), (3,))
    sl = grid.box(c - r, c + r)
    if sl is None:
        return None, None
    z = (grid.z[sl[0]][:, None, None] - c[0]) / r[0]
    y = (grid.y[sl[1]][None, :, None] - c[1]) / r[1]
    x = (grid.x[sl[2]][None, None, :] - c[2]) / r[2]
    return sl, (z * z + y * y + x * x) <= 1.0
