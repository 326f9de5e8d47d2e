"""Patient orientation of array axes from a Volume's direction matrix (LPS)."""

from __future__ import annotations

import numpy as np

__all__ = ["axis_sign", "lps_offset", "posterior_sign", "superior_end", "to_lps_order"]


def lps_offset(direction: np.ndarray, spacing, zyx: np.ndarray, axis: int) -> np.ndarray:
    """LPS coordinate ``axis`` (0 = x toward patient Left, 1 = y toward Posterior, 2 = z toward
    Superior), in mm relative to the origin, of points given as (..., 3) (z, y, x) voxel indices."""
    zyx = np.asarray(zyx, dtype=float)
    ijk = zyx[..., ::-1] * np.asarray(spacing, dtype=float)  # (column, row, slice) in mm
    return ijk @ np.asarray(direction, dtype=float)[axis]


def axis_sign(direction: np.ndarray, axis: int) -> int | None:
    """+1 if the array's index along LPS ``axis`` (1 = row j vs Posterior, 2 = slice k vs Superior)
    increases toward +LPS, -1 if toward -LPS, None if that array axis is not mostly along it."""
    d = float(np.asarray(direction, dtype=float)[axis, axis])
    if abs(d) < 0.5:
        return None
    return 1 if d > 0 else -1


def superior_end(direction: np.ndarray) -> int | None:
    """+1 if increasing slice index goes toward the head, -1 if toward the feet, None if the slice
    axis is not mostly cranio-caudal (not an axial stack)."""
    return axis_sign(direction, 2)


def posterior_sign(direction: np.ndarray) -> int | None:
    """+1 if the row index increases toward the patient's back, -1 toward the front, None if the
    rows are not mostly antero-posterior (not an axial image)."""
    return axis_sign(direction, 1)


def to_lps_order(array: np.ndarray, direction: np.ndarray):
    """Permute/flip a (Z, Y, X) array so that its axes run toward +S, +P, +L (the array order of
    an LPS-oriented SimpleITK image, which lungmask expects). Returns (array_lps, undo) where
    ``undo(a)`` maps an array in LPS order back to the input's order. Oblique directions are
    treated as the nearest axis-aligned ones."""
    direction = np.asarray(direction, dtype=float)
    perm = [0, 0, 0]  # perm[target_axis] = source array axis
    flips = []
    for a in range(3):
        col = direction[:, 2 - a]  # LPS vector of array axis a (0 = slice k, 1 = row j, 2 = column i)
        lps_axis = int(np.argmax(np.abs(col)))
        perm[2 - lps_axis] = a
        if col[lps_axis] < 0:
            flips.append(2 - lps_axis)
    if sorted(perm) != [0, 1, 2]:
        raise ValueError("direction matrix is degenerate")

    def forward(a: np.ndarray) -> np.ndarray:
        out = np.transpose(a, perm)
        return np.flip(out, axis=tuple(flips)) if flips else out

    inverse = np.argsort(perm)

    def undo(a: np.ndarray) -> np.ndarray:
        a = np.flip(a, axis=tuple(flips)) if flips else a
        return np.ascontiguousarray(np.transpose(a, inverse))

    return np.ascontiguousarray(forward(array)), undo
