"""The ``Harmonizer`` protocol: the volume-level call every bundle's ``harmonizer`` item provides."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Harmonizer"]


@runtime_checkable
class Harmonizer(Protocol):
    """``harmonizer(volume_hu, source, target, fov_mask=None) -> volume_hu``: (Z, Y, X) float32 **HU**
    in and out, from kernel domain ``source`` to ``target``; ``domains`` lists the domains it knows.
    :class:`~ctharmonize.inference.SliceHarmonizer` is the implementation every bundle uses; the CLI,
    the evaluation, checkpoint selection, the benchmark and export consume only this. A bundle's harmonizer
    may also carry ``spacing_policy`` (its trained in-plane spacing range; :mod:`ctharmonize.inference.spacing_policy`),
    which :func:`~ctharmonize.inference.harmonize_volume` applies."""

    domains: tuple[str, ...]

    def __call__(self, volume_hu: np.ndarray, source: str, target: str,
                 fov_mask: np.ndarray | None = None) -> np.ndarray: ...
