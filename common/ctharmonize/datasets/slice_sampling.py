"""What the slice datasets share: the datalist, the table of slices to train on, crop checks and seeded crops.

Randomness: the datasets draw only from torch's global RNG, so a training checkpoint's RNG state
reproduces the draws after a resume and DataLoader workers are seeded by torch. The MONAI
transforms (:class:`~ctharmonize.transforms.RandCrop2Dd`, numpy ``RandomState``) are re-seeded from
one torch draw per item (:func:`apply_seeded`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import Compose
from monai.utils import MAX_SEED

from ctharmonize.datasets.prepared_volume import PreparedVolume
from ctharmonize.errors import ConfigError, DimensionError

__all__ = ["apply_seeded", "check_roi_size", "check_slice_sizes", "load_entries", "slice_table"]


def load_entries(datalist: str | os.PathLike | Sequence[Mapping[str, Any]] | Sequence[str | os.PathLike]
                 ) -> tuple[list[dict], Path | None]:
    """Datalist entries (absolute paths) and the datalist file they came from (None for a list of entries).

    ``datalist``: a datalist file, a list of entries, or a list of datalist files (their entries in order;
    the first file is named in errors), e.g. two simulated sets trained on together."""
    from ctharmonize.data import load_datalist

    if isinstance(datalist, str | os.PathLike):
        return load_datalist(datalist), Path(datalist)
    items = list(datalist)
    if items and all(isinstance(d, str | os.PathLike) for d in items):
        return [e for d in items for e in load_datalist(d)], Path(items[0])
    return [dict(e) for e in items], None


def check_roi_size(roi_size: Sequence[int] | int | None, source: Path | None, multiple: int = 1
                   ) -> tuple[int, int] | None:
    """``roi_size`` as (H, W) pixels (None: whole slices); each a positive multiple of ``multiple``."""
    if roi_size is None:
        return None
    size = (int(roi_size), int(roi_size)) if isinstance(roi_size, int) else tuple(int(s) for s in roi_size)
    if len(size) != 2 or min(size) < max(1, multiple) or any(s % multiple for s in size):
        what = f"positive multiples of {multiple}" if multiple > 1 else "positive ints"
        raise ConfigError(source, f"roi_size must be two {what} (H, W), got {roi_size!r}")
    return size  # type: ignore[return-value]


def check_slice_sizes(volumes: Sequence[PreparedVolume], roi_size: tuple[int, int] | None, what: str,
                      multiple: int = 1) -> None:
    """Every slice at least ``roi_size``; without it, one slice size (so items batch) that is a multiple
    of ``multiple``. ``what`` names the group in the error (e.g. ``"domain ge_bone"``)."""
    sizes = {vol.image.shape[1:]: vol.path for vol in volumes}
    if roi_size is not None:
        for size, path in sizes.items():
            if size[0] < roi_size[0] or size[1] < roi_size[1]:
                raise DimensionError(path, f"slices of size {size} are smaller than roi_size {roi_size}")
        return
    if len(sizes) > 1:
        raise DimensionError(None, f"{what}: slices differ in size ({', '.join(map(str, sizes))}); "
                                   "set roi_size to train on crops")
    (size, path), = sizes.items()
    if size[0] % multiple or size[1] % multiple:
        raise DimensionError(path, f"slice size {size} is not a multiple of {multiple}; set roi_size")


def slice_table(volumes: Sequence[PreparedVolume], lung_only_fraction: float | None) -> np.ndarray:
    """int64 (N, 2): (volume index, slice index) of every slice to train on, in volume order."""
    rows = [np.stack([np.full(len(z), v), z], axis=1)
            for v, vol in enumerate(volumes) if len(z := vol.slice_indices(lung_only_fraction))]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), dtype=np.int64)


def apply_seeded(transform: Compose, data: Mapping[str, Any]) -> dict[str, Any]:
    """``transform(data)`` with its random state seeded by one draw of torch's global RNG."""
    transform.set_random_state(seed=int(torch.randint(MAX_SEED, (1,))))
    return dict(transform(dict(data)))
