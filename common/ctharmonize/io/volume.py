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

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (mm^3 / 1000)."""
        sx, sy, sz = self.spacing
        return sx * sy * sz / 1000.0

    def index_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) = (column, row, slice) to LPS mm."""
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
