"""The metadata key ``trained_pixel_spacing_mm``: the in-plane pixel-spacing range a bundle was trained on.

``"trained_pixel_spacing_mm": [min, max]`` in ``configs/metadata.json``: in-plane (row and column) pixel
spacing in mm of the training scans, two positive finite numbers with min <= max. Inference resamples or
refuses a volume outside it (:mod:`ctharmonize.inference.spacing_policy`); a bundle without the key is not
checked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from ctharmonize.errors import ConfigError

__all__ = ["TRAINED_SPACING_KEY", "trained_pixel_spacing"]

#: the metadata key
TRAINED_SPACING_KEY = "trained_pixel_spacing_mm"


def trained_pixel_spacing(meta: Mapping[str, Any] | None,
                          where: str | os.PathLike | None = None) -> tuple[float, float] | None:
    """``(min, max)`` mm from a bundle's metadata ``meta``, or None when it has no such key.

    Raises:
        ConfigError: (one line naming ``where``, the metadata file) for a value that is not two positive
            finite numbers with min <= max.
    """
    if not meta or meta.get(TRAINED_SPACING_KEY) is None:
        return None
    value = meta[TRAINED_SPACING_KEY]
    problem = f"{TRAINED_SPACING_KEY} must be [min, max]: two positive finite in-plane spacings in mm, " \
              f"min <= max; got {value!r}"
    if not isinstance(value, (list, tuple)) or len(value) != 2 \
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ConfigError(where, problem)
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ConfigError(where, problem)
    return lo, hi
