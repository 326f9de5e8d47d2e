"""Body-composition entry point: dispatch to a backend."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ctharmonize.errors import ConfigError
from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.body_composition_threshold import body_composition_threshold
from ctharmonize.segmentation.body_composition_totalsegmentator import body_composition_totalsegmentator

__all__ = ["BODY_BACKENDS", "body_composition"]


def _threshold(image, spacing, lung, device, **kw):
    return body_composition_threshold(image, spacing, lung=lung, **kw)


def _totalsegmentator(image, spacing, lung, device, **kw):
    return body_composition_totalsegmentator(image, spacing, lung=lung, device=device, **kw)


# backend name -> callable(image, spacing, lung, device, **kw) -> uint8 (Z, Y, X) canonical codes
BODY_BACKENDS: dict[str, Callable[..., np.ndarray]] = {
    "threshold": _threshold,
    "totalsegmentator": _totalsegmentator,
}


def body_composition(
    image: Volume | np.ndarray,
    backend: str = "threshold",
    spacing=None,
    lung: np.ndarray | None = None,
    device: str | None = None,
    **kw,
) -> np.ndarray:
    """Tissue labels uint8 (Z, Y, X) with canonical codes: 5 skeletal muscle, 6 subcutaneous fat,
    7 visceral/intermuscular fat, 8 bone, 1/2 lungs, 9 other body tissue, 0 outside the body.

    ``image``: Volume or (Z, Y, X) HU array. ``backend``: "threshold" or "totalsegmentator"
    (``task="tissue_types"`` or ``"total"``). ``lung``: optional lung mask (1/2) to use.
    """
    if backend not in BODY_BACKENDS:
        raise ConfigError(None, f"unknown body-composition backend {backend!r}; choose from {', '.join(BODY_BACKENDS)}")
    return BODY_BACKENDS[backend](image, spacing, lung, device, **kw)
