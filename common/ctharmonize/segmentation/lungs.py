"""Lung segmentation entry point: dispatch to a backend, optionally on another image."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ctharmonize.errors import ConfigError, DimensionError
from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.lung_lungmask import segment_lungs_lungmask
from ctharmonize.segmentation.lung_threshold import segment_lungs_threshold
from ctharmonize.segmentation.lung_totalsegmentator import segment_lungs_totalsegmentator

__all__ = ["LUNG_BACKENDS", "segment_lungs"]


def _threshold(image, spacing, device, weights, model, **kw):
    return segment_lungs_threshold(image, spacing, **kw)


def _lungmask(image, spacing, device, weights, model, **kw):
    return segment_lungs_lungmask(image, spacing, device=device, weights=weights, model=model, **kw)


def _totalsegmentator(image, spacing, device, weights, model, **kw):
    return segment_lungs_totalsegmentator(image, spacing, device=device, **kw)


# backend name -> callable(image, spacing, device, weights, model, **kw) -> uint8 (Z, Y, X)
LUNG_BACKENDS: dict[str, Callable[..., np.ndarray]] = {
    "threshold": _threshold,
    "lungmask": _lungmask,
    "totalsegmentator": _totalsegmentator,
}


def _shape(image) -> tuple[int, ...]:
    return image.shape if isinstance(image, Volume) else np.shape(image)


def segment_lungs(
    image: Volume | np.ndarray,
    backend: str = "threshold",
    spacing=None,
    device: str | None = None,
    weights: str | None = None,
    model: str = "R231",
    mask_from: Volume | np.ndarray | None = None,
    **kw,
) -> np.ndarray:
    """Lung mask uint8 (Z, Y, X): 0 background, 1 right lung, 2 left lung (lungmask convention).

    ``image``: Volume or (Z, Y, X) HU array. ``backend``: "threshold" (no weights), "lungmask"
    (``weights``/``model``: R231, LTRCLobes, R231CovidWeb) or "totalsegmentator".
    ``mask_from``: another image of the same grid (e.g. the unharmonized or soft-kernel
    series) to compute the mask on; the mask is then used for ``image``. Extra keywords go to
    the backend.
    """
    if backend not in LUNG_BACKENDS:
        raise ConfigError(None, f"unknown lung backend {backend!r}; choose from {', '.join(LUNG_BACKENDS)}")
    source = image
    if mask_from is not None:
        if tuple(_shape(mask_from)) != tuple(_shape(image)):
            raise DimensionError(
                kw.get("name"), f"mask_from shape {tuple(_shape(mask_from))} differs from the image shape "
                f"{tuple(_shape(image))}",
            )
        source = mask_from
    return LUNG_BACKENDS[backend](source, spacing, device, weights, model, **kw)
