"""Spacing-aware inference: what happens to a volume whose in-plane pixel spacing lies outside the range its
bundle was trained on (metadata ``trained_pixel_spacing_mm``, :mod:`ctharmonize.bundle.trained_spacing`).

A reconstruction kernel is a filter in physical frequency (lp/cm), but a network sees pixels: at another
pixel spacing the same kernel is another filter. :func:`~ctharmonize.inference.load_bundle_harmonizer`
attaches the bundle's range and the policy to its harmonizer (:func:`attach_spacing_policy`, attribute
``spacing_policy``); :func:`~ctharmonize.inference.harmonize_volume`, the volume-level step every consumer
goes through (CLI, cohorts, evaluation, deployment, PACS), applies it with :func:`harmonize_at_trained_spacing`:

* inside the range (0.1 % slack for rounded header values), or without a range: the harmonizer runs on the
  volume as it is, exactly as without this module;
* ``"resample"`` (default): each in-plane axis outside the range is resampled to the nearest end of the range,
  the volume harmonized there and resampled back to exactly its own grid; a one-line notice is logged
  (stderr by default) and returned for the output's provenance;
* ``"refuse"``: a one-line :class:`~ctharmonize.errors.PixelSpacingError`; nothing is harmonized.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ctharmonize.bundle.trained_spacing import trained_pixel_spacing
from ctharmonize.errors import ConfigError, PixelSpacingError
from ctharmonize.inference.harmonizer import Harmonizer, call_harmonizer

__all__ = ["SPACING_POLICIES", "SPACING_SLACK", "SpacingPolicy", "attach_spacing_policy", "check_spacing_policy",
           "harmonize_at_trained_spacing", "resample_inplane", "spacing_policy_of"]

log = logging.getLogger(__name__)

#: the policies: resample in-plane to the trained range and back (default), or refuse the volume
SPACING_POLICIES = ("resample", "refuse")
#: relative slack at both ends of the range (header spacings are rounded: float32 NIfTI, DICOM DS strings)
SPACING_SLACK = 1e-3
_ATTRIBUTE = "spacing_policy"


def check_spacing_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`SPACING_POLICIES`, else a one-line :class:`ConfigError`."""
    if policy not in SPACING_POLICIES:
        raise ConfigError(None, f"--spacing_policy must be {' or '.join(SPACING_POLICIES)}, not {policy!r}")
    return str(policy)


@dataclass(frozen=True)
class SpacingPolicy:
    """A bundle's trained in-plane spacing range ``trained_mm`` (min, max) mm and what to do outside it."""

    trained_mm: tuple[float, float]
    policy: str = "resample"

    def __post_init__(self) -> None:
        check_spacing_policy(self.policy)

    def inside(self, spacing: float) -> bool:
        """Whether one in-plane spacing (mm) lies in the range, with :data:`SPACING_SLACK`."""
        lo, hi = self.trained_mm
        return lo * (1.0 - SPACING_SLACK) <= spacing <= hi * (1.0 + SPACING_SLACK)

    def goal(self, spacing_xy: Sequence[float]) -> tuple[float, float] | None:
        """Target (sx, sy) mm for an input (sx, sy): each axis outside the range goes to its nearest end, an axis
        inside keeps its spacing; None when both are inside."""
        if all(self.inside(float(s)) for s in spacing_xy):
            return None
        lo, hi = self.trained_mm
        return tuple(float(s) if self.inside(float(s)) else min(max(float(s), lo), hi)
                     for s in spacing_xy)  # type: ignore[return-value]

    def describe(self, spacing_xy: Sequence[float], resampled_xy: Sequence[float]) -> str:
        """The provenance line: input spacing, trained range, the spacing it was harmonized at."""
        lo, hi = self.trained_mm
        return (f"input pixel spacing {_mm(spacing_xy)} mm is outside the bundle's trained range {lo:.4g}-{hi:.4g} "
                f"mm: resampled in-plane to {_mm(resampled_xy)} mm and back")


def _mm(xy: Sequence[float]) -> str:
    return f"{float(xy[0]):.4g} x {float(xy[1]):.4g}"


class _WithSpacingPolicy:
    """A harmonizer that takes no attributes, with a spacing policy: calls and attributes go to it."""

    def __init__(self, harmonizer: Harmonizer, policy: SpacingPolicy) -> None:
        self.harmonizer = harmonizer
        self.spacing_policy = policy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.harmonizer, name)

    def __call__(self, volume_hu: np.ndarray, source: str, target: str,
                 fov_mask: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
        return self.harmonizer(volume_hu, source, target, fov_mask=fov_mask, **kwargs)


def attach_spacing_policy(harmonizer: Harmonizer, meta: Mapping[str, Any] | None, policy: str = "resample",
                          where: str | os.PathLike | None = None) -> Harmonizer:
    """``harmonizer`` with the range of ``meta`` (a bundle's metadata) and ``policy`` as its ``spacing_policy``
    attribute (set in place; a harmonizer that takes no attributes is wrapped). Metadata without
    ``trained_pixel_spacing_mm``: returned unchanged (no check). Raises ConfigError (naming ``where``, the
    metadata file) for a malformed range or an unknown policy."""
    check_spacing_policy(policy)
    trained = trained_pixel_spacing(meta, where)
    if trained is None:
        return harmonizer
    rule = SpacingPolicy(trained, policy)
    try:
        setattr(harmonizer, _ATTRIBUTE, rule)
    except (AttributeError, TypeError):
        return _WithSpacingPolicy(harmonizer, rule)  # type: ignore[return-value]
    return harmonizer


def spacing_policy_of(harmonizer: Any) -> SpacingPolicy | None:
    """The :class:`SpacingPolicy` attached to ``harmonizer``, or None (no range: no check)."""
    rule = getattr(harmonizer, _ATTRIBUTE, None)
    return rule if isinstance(rule, SpacingPolicy) else None


def resample_inplane(array: np.ndarray, shape_yx: tuple[int, int], order: int) -> np.ndarray:
    """Resample every axial slice of ``array`` (Z, Y, X) to (Z, *shape_yx), z untouched, keeping the field of view.

    ``scipy.ndimage.zoom`` per slice with ``grid_mode=True`` (pixel edges aligned: the grids cover the same field
    of view, so resampling there and back returns exactly the input grid) and ``mode="reflect"``
    (half-sample symmetric, the boundary that fits that grid). ``order`` 3 (cubic B-spline with its prefilter)
    for HU: linear interpolation would itself act as a low-pass filter (its response falls to about 0.4 at the
    source grid's Nyquist frequency), i.e. soften the image like a kernel, which is what the harmonizer is to
    change; the spline keeps the pass band nearly flat. Coarsening (zoom < 1) first low-passes each slice with
    a Gaussian of sigma = (1/zoom - 1)/2 source pixels per axis (scikit-image's ``resize`` anti-aliasing): an
    FBP reconstruction on the coarser grid (the simulator's, and a scanner's at a larger FOV) filters the
    projections only up to that grid's Nyquist frequency, whereas plain point sampling of a 0.7 mm image
    folds its noise above that frequency back into the band.
    ``order`` 0 (nearest neighbour) for masks, never filtered. Returns the input's dtype.
    """
    ny, nx = array.shape[1:]
    zoom = (shape_yx[0] / ny, shape_yx[1] / nx)
    mode = "reflect" if order > 0 else "nearest"
    source = array.astype(np.uint8) if array.dtype == bool else array
    sigma = tuple(max(0.0, (1.0 / z - 1.0) / 2.0) for z in zoom)
    if order > 0 and any(sg > 0 for sg in sigma) and len(source):
        source = np.stack([ndimage.gaussian_filter(s.astype(np.float32, copy=False), sigma, mode="reflect")
                           for s in source]).astype(array.dtype, copy=False)
    out = np.stack([ndimage.zoom(s, zoom, order=order, mode=mode, grid_mode=True) for s in source]) \
        if len(source) else np.empty((0, *shape_yx), source.dtype)
    return out.astype(bool) if array.dtype == bool else out


def _resampled_shape(n: int, spacing: float, goal: float) -> int:
    """Pixels along an axis of ``n`` pixels at ``spacing`` mm for about ``goal`` mm over the same field of view:
    the finest grid not finer than ``goal`` when coarsening, the coarsest not coarser when refining (so the
    resampled spacing lies inside the range wherever the range is at least one pixel step wide)."""
    if math.isclose(goal, spacing):
        return n
    cells = n * spacing / goal
    return max(1, math.floor(cells + 1e-9) if goal > spacing else math.ceil(cells - 1e-9))


def harmonize_at_trained_spacing(harmonizer: Harmonizer, array: np.ndarray, spacing: Sequence[float], source: str,
                                 target: str, fov_mask: np.ndarray | None = None,
                                 where: str | os.PathLike | None = None) -> tuple[np.ndarray, str | None]:
    """``harmonizer(array, source, target, fov_mask=fov_mask)`` (:func:`call_harmonizer`: without ``fov_mask`` when
    it is None, with ``spacing`` when the harmonizer needs it) with its spacing policy applied (module docstring).

    Args:
        harmonizer: a harmonizer, with or without a ``spacing_policy`` attribute.
        array: (Z, Y, X) float32 HU.
        spacing: (sx, sy, ...) mm of ``array`` (column, row spacing; z is never touched).
        source, target: kernel domains.
        fov_mask: (Z, Y, X) bool, True inside the field of view; outside it the input voxels are kept exactly.
        where: the input file or series, named in the notice and the error.

    Returns:
        (harmonized (Z, Y, X) float32 HU on the input's grid, the provenance line or None when not resampled).

    Raises:
        PixelSpacingError: outside the range with policy ``"refuse"`` (before the harmonizer runs).
    """
    rule = spacing_policy_of(harmonizer)
    spacing_xy = (float(spacing[0]), float(spacing[1]))
    goal = rule.goal(spacing_xy) if rule is not None else None
    if rule is None or goal is None:
        return call_harmonizer(harmonizer, array, source, target, fov_mask, spacing), None
    lo, hi = rule.trained_mm
    if rule.policy == "refuse":
        raise PixelSpacingError(where, f"input pixel spacing {_mm(spacing_xy)} mm is outside the bundle's trained "
                                       f"range {lo:.4g}-{hi:.4g} mm; not harmonized (--spacing_policy resample, the "
                                       "default, resamples in-plane to that range and back)")
    hu = np.asarray(array, dtype=np.float32)
    ny, nx = hu.shape[1:]
    shape = (_resampled_shape(ny, spacing_xy[1], goal[1]), _resampled_shape(nx, spacing_xy[0], goal[0]))
    resampled_xy = (nx * spacing_xy[0] / shape[1], ny * spacing_xy[1] / shape[0])
    note = rule.describe(spacing_xy, resampled_xy)
    prefix = f"{os.fspath(where)}: " if where is not None else ""
    log.warning("%s%s (--spacing_policy refuse to stop instead)", prefix, note)
    mask = None if fov_mask is None else resample_inplane(np.asarray(fov_mask, dtype=bool), shape, order=0)
    spacing_at = (resampled_xy[0], resampled_xy[1], *(float(s) for s in spacing[2:]))
    harmonized = np.asarray(call_harmonizer(harmonizer, resample_inplane(hu, shape, order=3), source, target, mask,
                                            spacing_at), dtype=np.float32)
    out = resample_inplane(harmonized, (ny, nx), order=3)
    if harmonized.size:  # the spline's overshoot stays within what the harmonizer returned (its HU window)
        np.clip(out, harmonized.min(), harmonized.max(), out=out)
    if fov_mask is not None:
        outside = ~np.asarray(fov_mask, dtype=bool)
        out[outside] = hu[outside]
    return out, note
