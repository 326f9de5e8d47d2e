"""The bundle's demo input: a small simulated chest CT, generated on first use."""

from __future__ import annotations

import os
from pathlib import Path

from ctharmonize.domains import default_registry
from ctharmonize.errors import OutputExistsError

__all__ = ["ensure_sample_volume"]


def ensure_sample_volume(path: str | os.PathLike, kernel: str = "ge_bone", size: int = 128, slices: int = 16,
                         seed: int = 0) -> str:
    """Return ``path`` (a ``.nii.gz``), simulating it first if it does not exist.

    The volume is one reconstruction (kernel domain ``kernel``, e.g. GE BONE) of the simulator's chest
    phantom ``seed``: float32 HU (``slices``, ``size``, ``size``), written with a JSON sidecar holding
    Manufacturer and ConvolutionKernel so the source domain resolves from the header. An existing
    file is never touched or regenerated.
    """
    path = Path(path)
    if path.exists():
        return os.fspath(path)
    from ctharmonize.io import write_volume
    from ctharmonize.simulation.phantom import generate_phantom
    from ctharmonize.simulation.scan import simulate_scan

    info = default_registry()[default_registry().validate_name(kernel)]
    phantom = generate_phantom(seed=seed, size=size, slices=slices)
    volume = simulate_scan(phantom, vendor=info.vendor, kernels=[kernel], seed=seed)[kernel]
    try:
        write_volume(volume, path, sidecar=True)
    except OutputExistsError:  # written meanwhile by a concurrent run
        pass
    return os.fspath(path)
