"""Which anatomical plane the slices of a :class:`Volume` lie in, and a guard for axial-only models.

The plane is classified from the image normal n = row x column (``direction`` columns 0 and 1,
LPS): **axial** when the angle between n and the patient's head-feet axis (LPS z) is at most
:data:`MAX_OBLIQUE_DEG` (45 deg), i.e. |n_z| >= cos 45 deg; otherwise **sagittal** (n within 45 deg
of the left-right axis x) or **coronal** (n within 45 deg of the antero-posterior axis y); a normal
more than 45 deg from every axis is **oblique**. So an oblique-axial series (gantry-tilted or
reformatted up to 45 deg from true axial) counts as axial; a sagittal or coronal reformat does not.
The same rule applies to DICOM (from ImageOrientationPatient) and NIfTI (from the affine).
"""

from __future__ import annotations

import os

import numpy as np

from ctharmonize.errors import NonAxialError
from ctharmonize.io.volume import Volume

__all__ = ["MAX_OBLIQUE_DEG", "slice_orientation", "normal_angles_deg", "check_axial", "iop_direction"]

#: Largest angle (deg) between the image normal and an LPS axis for the slices to be named after it.
MAX_OBLIQUE_DEG = 45.0
_PLANES = ("sagittal", "coronal", "axial")  # plane whose normal is LPS x, y, z


def iop_direction(iop: object) -> np.ndarray | None:
    """The 3x3 direction (row, column, normal) of an ImageOrientationPatient value (6 direction cosines,
    LPS); None when it is missing, not 6 finite numbers, or degenerate (parallel row and column)."""
    try:
        values = np.asarray([float(v) for v in iop], dtype=np.float64)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        return None
    normal = np.cross(values[:3], values[3:])
    if float(np.linalg.norm(normal)) < 1e-6:
        return None
    return np.column_stack([values[:3], values[3:], normal])


def normal_angles_deg(direction: np.ndarray) -> np.ndarray:
    """Angles (deg) between the image normal (direction col 0 x col 1) and the LPS x, y, z axes; shape (3,)."""
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    n = np.cross(direction[:, 0], direction[:, 1])
    n = n / np.linalg.norm(n)
    return np.degrees(np.arccos(np.clip(np.abs(n), 0.0, 1.0)))


def slice_orientation(direction: np.ndarray) -> str:
    """``"axial"``, ``"sagittal"``, ``"coronal"`` or ``"oblique"`` for a 3x3 LPS direction matrix."""
    angles = normal_angles_deg(direction)
    if angles[2] <= MAX_OBLIQUE_DEG:
        return "axial"
    axis = int(np.argmin(angles))
    return _PLANES[axis] if angles[axis] <= MAX_OBLIQUE_DEG else "oblique"


def check_axial(volume: Volume, path: str | os.PathLike | None,
                what: str = "the harmonization network was trained on axial slices",
                override: str = "--allow_non_axial") -> str:
    """Raise :class:`NonAxialError` naming ``path`` unless ``volume``'s slices are axial; returns the plane."""
    plane = slice_orientation(volume.direction)
    if plane != "axial":
        tilt = float(normal_angles_deg(volume.direction)[2])
        raise NonAxialError(
            path, f"{plane} reformat (image normal {tilt:.0f} deg from the head-feet axis; axial means at most "
            f"{MAX_OBLIQUE_DEG:g} deg): {what}; pass {override} to process it anyway")
    return plane
