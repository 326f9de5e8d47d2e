"""Harmonize a whole :class:`Volume` with a harmonizer (HU in, HU out), keeping geometry and provenance."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ctharmonize.errors import ConfigError
from ctharmonize.inference.harmonizer import Harmonizer, target_domains
from ctharmonize.inference.source_domain import check_model_domain
from ctharmonize.inference.spacing_policy import harmonize_at_trained_spacing
from ctharmonize.io.volume import Volume

__all__ = ["harmonize_volume", "harmonized_volume"]


def harmonized_volume(volume: Volume, array: np.ndarray, source: str, target: str,
                      model_name: str | None = None, spacing_resampled: str | None = None) -> Volume:
    """``volume`` with the harmonized HU ``array`` (Z, Y, X); geometry, FOV and source DICOM header are kept,
    and ``header.extra`` records ``harmonized_from`` / ``harmonized_to`` / ``harmonization_model`` and, when the
    volume was harmonized at another in-plane spacing, ``spacing_resampled`` (the provenance line of
    :mod:`ctharmonize.inference.spacing_policy`, also written to a derived DICOM's DerivationDescription)."""
    extra = dict(volume.header.extra)
    extra.update(harmonized_from=source, harmonized_to=target)
    if model_name:
        extra["harmonization_model"] = model_name
    if spacing_resampled:
        extra["spacing_resampled"] = spacing_resampled
    return volume.with_array(np.asarray(array, dtype=np.float32), header=replace(volume.header, extra=extra))


def harmonize_volume(volume: Volume, harmonizer: Harmonizer, source: str, target: str,
                     model_name: str | None = None, *, path: str | os.PathLike | None = None) -> Volume:
    """Harmonize ``volume`` (HU) from domain ``source`` to ``target`` with ``harmonizer``.

    A harmonizer from :func:`~ctharmonize.inference.load_bundle_harmonizer` carries its bundle's trained in-plane
    spacing range and policy: outside the range the volume is resampled in-plane there and back (with a notice
    and ``header.extra["spacing_resampled"]``) or refused (:mod:`ctharmonize.inference.spacing_policy`); inside
    it, or without a range, the harmonizer runs on the volume as it is.

    Args:
        volume: input; ``array`` float32 HU (Z, Y, X). Not modified.
        harmonizer: ``harmonizer(volume_hu, source, target, fov_mask=...) -> volume_hu`` with ``domains``,
            e.g. a bundle's ``harmonizer`` item (:class:`~ctharmonize.inference.SliceHarmonizer`).
        source, target: kernel-domain names known to the harmonizer.
        model_name: recorded in the output header.
        path: the input file or series, named in the spacing notice and error.

    Returns:
        a new :class:`Volume` in HU on the input's grid: harmonized inside ``volume.fov_mask``, the input values
        outside it.

    Raises:
        PixelSpacingError: spacing outside the bundle's range with policy ``"refuse"``.
    """
    domains = getattr(harmonizer, "domains", None)
    if domains is not None:
        check_model_domain(source, domains, "source")
        if target != source:
            check_model_domain(target, target_domains(harmonizer), "target")
    out, resampled = harmonize_at_trained_spacing(harmonizer, volume.array, volume.spacing, source, target,
                                                  fov_mask=volume.fov_mask, where=path)
    if tuple(np.shape(out)) != tuple(volume.shape):
        raise ConfigError(None, f"the harmonizer returned shape {tuple(np.shape(out))} for a {tuple(volume.shape)} volume")
    return harmonized_volume(volume, out, source, target, model_name, spacing_resampled=resampled)
