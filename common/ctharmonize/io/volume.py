"""The in-memory CT volume: HU array + geometry + header summary.

Conventions (the same as SimpleITK's, so conversions are free of axis juggling):

* ``array`` is float32 **HU**, shape ``(Z, Y, X)`` = (slices, rows, columns).
* ``spacing`` is ``(sx, sy, sz)`` in mm, i.e. (column spacing, row spacing, slice spacing).
* ``origin`` is the LPS position in mm of voxel ``array[0, 0, 0]``.
* ``direction`` is a 3x3 matrix whose *columns* are the LPS unit vectors of the
  column (i), row (j) and slice (k) index axes.
* ``fov_mask`` (optional) is a bool array shaped like ``array``: True inside the
  reconstructed field of view. Outside-FOV voxels hold ``header.padding_value`` in
  the source data and are replaced by -1024 HU (air) in ``array``.

Slice-wise geometry (DICOM read with ``slicewise=True``): when the slices are not on the grid
``origin + k * spacing[2] * direction[:, 2]`` (gantry tilt, missing slices, uneven spacing),
``slice_positions`` (Z, 3) holds the LPS position in mm of pixel [0, 0] of every slice; the
in-plane axes (``direction`` columns 0, 1, ``spacing`` x, y) hold for every slice, ``origin`` is
slice 0's position, ``direction[:, 2]`` the image normal and ``spacing[2]`` the median gap along it.
``is_regular`` tells whether a volume is on a regular orthogonal grid (what NIfTI and the 3-D
steps need; see :mod:`ctharmonize.io.resample`). ``slice_datasets`` keeps each source slice's
DICOM dataset (no pixel data) for the per-slice attributes of a derived series.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["HeaderSummary", "Volume"]


@dataclass
class HeaderSummary:
    """Acquisition facts that matter for harmonization. Missing values are None."""

    manufacturer: str | None = None
    manufacturer_model_name: str | None = None
    convolution_kernel: tuple[str, ...] = ()  # (0018,1210) may be multi-valued
    kvp: float | None = None
    exposure_mas: float | None = None  # Exposure (0018,1152) in mAs
    slice_thickness: float | None = None  # mm
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    series_description: str | None = None
    patient_id: str | None = None
    padding_value: float | None = None  # HU value used outside the FOV in the source, if any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kernel(self) -> str | None:
        """The first ConvolutionKernel value, or None."""
        return self.convolution_kernel[0] if self.convolution_kernel else None


@dataclass
class Volume:
    """A CT volume in HU. See the module docstring for axis and geometry conventions."""

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    header: HeaderSummary = field(default_factory=HeaderSummary)
    fov_mask: np.ndarray | None = None
    # The first source DICOM dataset without pixel data (pydicom.Dataset), kept so that a
    # derived series can copy patient/study/equipment attributes. None for NIfTI input.
    source_dataset: Any | None = None
    # (Z, 3) LPS mm of pixel [0, 0] of each slice when the slices are off the regular grid; None
    # when origin/spacing/direction describe every slice (see the module docstring).
    slice_positions: np.ndarray | None = None
    # Each slice's source DICOM dataset (pydicom.Dataset, no pixel data), in slice order; or None.
    slice_datasets: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise ValueError(f"Volume.array must be 3-D (Z, Y, X), got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if self.fov_mask is not None:
            self.fov_mask = np.asarray(self.fov_mask, dtype=bool)
            if self.fov_mask.shape != self.array.shape:
                raise ValueError("Volume.fov_mask must have the same shape as Volume.array")
        if self.slice_positions is not None:
            self.slice_positions = np.asarray(self.slice_positions, dtype=np.float64)
            if self.slice_positions.shape != (self.array.shape[0], 3):
                raise ValueError(f"Volume.slice_positions must be (Z, 3) = ({self.array.shape[0]}, 3), "
                                 f"got {self.slice_positions.shape}")
        if self.slice_datasets is not None:
            self.slice_datasets = tuple(self.slice_datasets)
            if len(self.slice_datasets) != self.array.shape[0]:
                raise ValueError("Volume.slice_datasets must hold one dataset per slice")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (mm^3 / 1000)."""
        sx, sy, sz = self.spacing
        return sx * sy * sz / 1000.0

    @property
    def normal(self) -> np.ndarray:
        """Unit normal of the image plane (row x column direction), LPS; shape (3,)."""
        n = np.cross(self.direction[:, 0], self.direction[:, 1])
        return n / np.linalg.norm(n)

    def positions_lps(self) -> np.ndarray:
        """(Z, 3) LPS mm of pixel [0, 0] of every slice: ``slice_positions`` or the grid's."""
        if self.slice_positions is not None:
            return self.slice_positions.copy()
        k = np.arange(self.array.shape[0], dtype=np.float64)[:, None]
        return np.asarray(self.origin) + k * self.spacing[2] * self.direction[:, 2]

    def irregularity(self, tolerance: float = 0.01) -> str | None:
        """Why the slices are not on a regular orthogonal grid, or None when they are.

        Irregular: a slice is offset in-plane from slice 0 by more than 0.1 pixel (gantry tilt or a
        sheared stack), or a gap along the normal differs from the grid's by more than
        ``tolerance`` (relative; missing, extra or unevenly spaced slices).
        """
        pos = self.positions_lps()
        if len(pos) < 2:
            return None
        sign = 1.0 if float(self.direction[:, 2] @ self.normal) >= 0 else -1.0
        normal = sign * self.normal
        rel = pos - pos[0]
        heights = rel @ normal
        drift = np.linalg.norm(rel - np.outer(heights, normal), axis=1)
        sx, sy, _ = self.spacing
        sz = self.spacing[2] * abs(float(self.direction[:, 2] @ normal))  # expected gap along the normal
        problems = []
        if drift.max() > 0.1 * min(sx, sy):
            k = int(np.argmax(drift))
            angle = float(np.degrees(np.arctan2(drift[k], abs(heights[k]))))
            problems.append(f"slice stack tilted {angle:.3g} deg from the image normal (gantry tilt)")
        gaps = np.diff(heights)
        if np.any(gaps <= 1e-3):
            k = int(np.argmin(gaps))
            problems.append(f"slices {k} and {k + 1} are not in increasing order along the normal "
                            f"(gap {gaps[k]:.4g} mm)")
        else:
            deviation = np.abs(gaps - sz) / sz
            bad = np.flatnonzero(deviation > tolerance)
            if bad.size:
                k = int(bad[np.argmax(deviation[bad])])
                ratio = gaps[k] / sz
                kind = "missing slice(s)" if ratio > 1.5 and abs(ratio - round(ratio)) < 0.1 else "uneven spacing"
                more = f" ({bad.size} irregular gaps)" if bad.size > 1 else ""
                problems.append(f"{kind}: gap of {gaps[k]:.4g} mm after slice {k} ({heights[k]:.4g} mm along "
                                f"the normal), {sz:.4g} mm expected{more}")
        return "; ".join(problems) or None

    @property
    def is_regular(self) -> bool:
        """True when every slice lies on the orthogonal grid of origin, spacing and direction."""
        return self.irregularity() is None

    def index_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) = (column, row, slice) to LPS mm.

        For an irregular volume (``slice_positions`` set) this is the grid approximation; slice k's
        true position is ``slice_positions[k]``."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def affine_ras(self) -> np.ndarray:
        """NIfTI-style 4x4 affine mapping (i, j, k) = (column, row, slice) to RAS mm."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.index_to_lps()

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """A copy with a new HU array (same geometry/header unless overridden)."""
        return replace(self, array=array, **changes)
