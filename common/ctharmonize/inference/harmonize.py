"""Harmonize a whole :class:`Volume` with one source→target path of a multipath generator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ctharmonize.inference.slice_harmonizer import SliceHarmonizer
from ctharmonize.inference.source_domain import check_model_domain
from ctharmonize.io.volume import Volume
from ctharmonize.transforms import HU_MAX, HU_MIN

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


def harmonize_volume(
    volume: Volume,
    generator: nn.Module,
    source: str,
    target: str,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    amp: bool = True,
    hu_min: float = HU_MIN,
    hu_max: float = HU_MAX,
    model_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Volume:
    """Harmonize ``volume`` (HU) from domain ``source`` to ``target`` slice by slice.

    Args:
        volume: input; ``array`` float32 HU (Z, Y, X). Not modified.
        generator: a ``MultipathGenerator`` (anything with ``domains`` and ``path(source, target)``
            returning a (B, 1, H, W) [-1, 1] → [-1, 1] module).
        source, target: kernel-domain names known to the generator.
        batch_size, device, amp, progress: see :class:`SliceHarmonizer` (AMP only on CUDA).
        hu_min, hu_max: the trained HU window; output HU is clipped to it.
        model_name: recorded in the output header.

    Returns:
        a new :class:`Volume` in HU: harmonized inside ``volume.fov_mask``, the input values outside it.
    """
    domains = getattr(generator, "domains", None)
    if domains is not None:
        check_model_domain(source, domains, "source")
        check_model_domain(target, domains, "target")
    harmonizer = SliceHarmonizer(generator.path(source, target), hu_min=hu_min, hu_max=hu_max,
                                 batch_size=batch_size, device=device, amp=amp, progress=progress)
    out = harmonizer(volume.array, volume.fov_mask)
    return harmonized_volume(volume, out, source, target, model_name)
