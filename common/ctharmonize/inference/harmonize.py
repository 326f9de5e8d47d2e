"""Harmonize a whole :class:`Volume` with a harmonizer (HU in, HU out), keeping geometry and provenance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ctharmonize.errors import ConfigError
from ctharmonize.inference.harmonizer import Harmonizer
from ctharmonize.inference.source_domain import check_model_domain
from ctharmonize.io.volume import Volume

__all__ = ["harmonize_volume", "harmonized_volume"]


def harmonized_volume(volume: Volume, array: np.ndarray, source: str, target: str,
                      model_name: str | None = None) -> Volume:
    """``volume`` with the harmonized HU ``array`` (Z, Y, X); geometry, FOV and source DICOM header are kept,
    and ``header.extra`` records ``harmonized_from`` / ``harmonized_to`` / ``harmonization_model``."""
    extra = dict(volume.header.extra)
    extra.update(harmonized_from=source, harmonized_to=target)
    if model_name:
        extra["harmonization_model"] = model_name
    return volume.with_array(np.asarray(array, dtype=np.float32), header=replace(volume.header, extra=extra))


def harmonize_volume(volume: Volume, harmonizer: Harmonizer, source: str, target: str,
                     model_name: str | None = None) -> Volume:
    """Harmonize ``volume`` (HU) from domain ``source`` to ``target`` with ``harmonizer``.

    Args:
        volume: input; ``array`` float32 HU (Z, Y, X). Not modified.
        harmonizer: ``harmonizer(volume_hu, source, target, fov_mask=...) -> volume_hu`` with ``domains``,
            e.g. a bundle's ``harmonizer`` item (:class:`~ctharmonize.inference.SliceHarmonizer`).
        source, target: kernel-domain names known to the harmonizer.
        model_name: recorded in the output header.

    Returns:
        a new :class:`Volume` in HU: harmonized inside ``volume.fov_mask``, the input values outside it.
    """
    domains = getattr(harmonizer, "domains", None)
    if domains is not None:
        check_model_domain(source, domains, "source")
        check_model_domain(target, domains, "target")
    out = harmonizer(volume.array, source, target, fov_mask=volume.fov_mask)
    if tuple(np.shape(out)) != tuple(volume.shape):
        raise ConfigError(None, f"the harmonizer returned shape {tuple(np.shape(out))} for a {tuple(volume.shape)} volume")
    return harmonized_volume(volume, out, source, target, model_name)
