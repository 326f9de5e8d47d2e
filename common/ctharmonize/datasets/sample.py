"""The bundles' default training data: a simulated dataset generated on first use."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ensure_simulated_dataset"]


def ensure_simulated_dataset(
    out_dir: str | os.PathLike, subjects: int = 4, size: int = 128, slices: int = 16, seed: int = 0,
    progress: bool = True, preset: str | None = None,
) -> Path:
    """Return ``out_dir/datalist.json``, first generating the dataset with
    :func:`ctharmonize.simulation.generate_dataset` when that file is missing.

    An existing dataset is never regenerated or modified (whatever its parameters were).
    Args: ``subjects`` per vendor, in-plane ``size`` (pixels), ``slices`` per volume, simulator ``seed``,
    simulation ``preset`` (e.g. ``"clinical"``).
    """
    out = Path(out_dir)
    datalist = out / "datalist.json"
    if datalist.is_file():
        return datalist
    from ctharmonize.simulation import generate_dataset

    return Path(generate_dataset(out, subjects=subjects, size=size, slices=slices, seed=seed, overwrite=False,
                                 progress=progress, preset=preset))
