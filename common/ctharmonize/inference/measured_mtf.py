"""``MeasuredMTF``: the volume-level condition of paper 001's harmonizer, the 2D MTF measured on the image itself.

Paper 001 conditions its network on "the 2D modulated transfer function of the system measured at the skin-air
boundary of input images at 64 frequency samples". For each volume :class:`MeasuredMTF` runs
:func:`ctharmonize.physics.skin_air_mtf` (body segmentation, edge profiles along the boundary normals,
oversampled ESF, LSF, MTF) on the HU volume at its pixel spacing and returns its (1, 1, 64, 64) MTF2D, the
layout of :mod:`ctharmonize.simulation.mtf2d` (the one the network was trained with). Given to
:class:`~ctharmonize.inference.SliceHarmonizer` as ``condition``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ctharmonize.errors import InputError

__all__ = ["MTF_FALLBACKS", "MeasuredMTF"]

log = logging.getLogger(__name__)

#: what happens when the MTF cannot be measured: a one-line error, or the source kernel's design MTF (with a notice)
MTF_FALLBACKS = ("error", "design")


class MeasuredMTF:
    """``condition(volume_hu, spacing, fov_mask, source, target) -> {"mtf2d": (1, 1, 64, 64) float32}``.

    Args:
        fallback: ``"error"`` (default): a volume whose skin–air MTF cannot be measured (too few clean edge
            profiles, e.g. a body cut by the field of view) raises a one-line :class:`InputError`;
            ``"design"``: use the source kernel's design MTF (simulator kernels only) with a logged notice.
        measure_kwargs: extra :func:`~ctharmonize.physics.skin_air_mtf` arguments.

    ``last`` holds the summary (MTF50, MTF10 in lp/cm, accepted profiles) of the latest measurement, or
    ``{"mtf_source": "design"}`` after a fallback.
    """

    def __init__(self, fallback: str = "error", measure_kwargs: Mapping[str, Any] | None = None) -> None:
        if fallback not in MTF_FALLBACKS:
            raise ValueError(f"fallback must be one of {', '.join(MTF_FALLBACKS)}, got {fallback!r}")
        self.fallback = fallback
        self.measure_kwargs = dict(measure_kwargs or {})
        self.last: dict[str, Any] = {}

    def __call__(self, volume_hu: np.ndarray, spacing: tuple[float, ...], fov_mask: np.ndarray | None,
                 source: str, target: str) -> dict[str, torch.Tensor]:
        from ctharmonize.physics import skin_air_mtf
        from ctharmonize.simulation.mtf2d import MTF2D_SIZE, kernel_mtf2d

        try:
            measured = skin_air_mtf(volume_hu, spacing, fov_mask=fov_mask, **self.measure_kwargs)
            mtf = np.asarray(measured.mtf2d(MTF2D_SIZE), dtype=np.float32)
            self.last = {"mtf_source": "measured", "mtf50_lpcm": float(measured.mtf50),
                         "mtf10_lpcm": float(measured.mtf10), "accepted_profiles": int(measured.accepted)}
        except InputError as err:
            if self.fallback == "error":
                raise InputError(err.path, f"cannot measure the input's MTF at the skin-air edge ({err.problem}); "
                                           "the MTF-conditioned harmonizer needs it (a MeasuredMTF(fallback='design') "
                                           "uses the kernel's design MTF)") from err
            try:
                mtf = kernel_mtf2d(source, (float(spacing[1]), float(spacing[0])))
            except ValueError as bad:
                raise InputError(err.path, f"cannot measure the input's MTF ({err.problem}) and kernel {source!r} "
                                           "has no design MTF") from bad
            log.warning("MTF not measurable (%s): using the design MTF of %s", err, source)
            self.last = {"mtf_source": "design"}
        return {"mtf2d": torch.from_numpy(np.ascontiguousarray(mtf, dtype=np.float32))[None, None]}
