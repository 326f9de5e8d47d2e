"""The ``Harmonizer`` protocol: the volume-level call every bundle's ``harmonizer`` item provides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Harmonizer", "call_harmonizer", "needs_spacing", "target_domains"]


@runtime_checkable
class Harmonizer(Protocol):
    """``harmonizer(volume_hu, source, target, fov_mask=None) -> volume_hu``: (Z, Y, X) float32 **HU**
    in and out, from kernel domain ``source`` to ``target``; ``domains`` lists the domains it knows.
    :class:`~ctharmonize.inference.SliceHarmonizer` is the implementation every bundle uses; the CLI,
    the evaluation, checkpoint selection, the benchmark and export consume only this. A bundle's harmonizer
    may also carry ``spacing_policy`` (its trained in-plane spacing range; :mod:`ctharmonize.inference.spacing_policy`),
    which :func:`~ctharmonize.inference.harmonize_volume` applies.

    A harmonizer that conditions on a measurement of the whole volume in physical units (paper 001: the MTF
    measured at the skin–air edge, in lp/cm) sets ``needs_spacing = True`` and takes the keyword
    ``spacing`` = (sx, sy, sz) mm of the array it is given; :func:`call_harmonizer` (used by
    :func:`~ctharmonize.inference.harmonize_volume` and every other consumer) passes it, the spacing the
    volume is harmonized at (after any in-plane resampling of the spacing policy).

    A harmonizer that maps to some of its domains only (paper 001: every kernel to ``"ground_truth"``) lists them
    as ``targets`` (:func:`target_domains`; default: every domain)."""

    domains: tuple[str, ...]

    def __call__(self, volume_hu: np.ndarray, source: str, target: str,
                 fov_mask: np.ndarray | None = None) -> np.ndarray: ...


def target_domains(harmonizer: Any) -> tuple[str, ...]:
    """The domains ``harmonizer`` maps to: its ``targets`` attribute, else its ``domains``."""
    targets = getattr(harmonizer, "targets", None)
    return tuple(targets if targets is not None else getattr(harmonizer, "domains", ()))


def needs_spacing(harmonizer: Any) -> bool:
    """Whether ``harmonizer`` takes the keyword ``spacing`` (its ``needs_spacing`` attribute is true)."""
    return bool(getattr(harmonizer, "needs_spacing", False))


def call_harmonizer(harmonizer: Harmonizer, array: np.ndarray, source: str, target: str,
                    fov_mask: np.ndarray | None = None, spacing: Sequence[float] | None = None) -> np.ndarray:
    """``harmonizer(array, source, target[, fov_mask=...][, spacing=...])``: the mask only when there is one (so
    the three-argument harmonizers of checkpoint selection work too), the spacing only to a harmonizer that
    :func:`needs_spacing` (a one-line :class:`~ctharmonize.errors.ConfigError` when it needs one and none is
    known)."""
    kwargs: dict[str, Any] = {}
    if fov_mask is not None:
        kwargs["fov_mask"] = fov_mask
    if needs_spacing(harmonizer):
        if spacing is None:
            from ctharmonize.errors import ConfigError

            raise ConfigError(None, f"{type(harmonizer).__name__} measures the volume in physical units and needs its "
                                    "pixel spacing; harmonize a Volume (harmonize_volume) or pass spacing=")
        kwargs["spacing"] = tuple(float(s) for s in spacing)
    return harmonizer(array, source, target, **kwargs)
