"""The bundle's demo input: a small simulated chest CT, generated on first use."""

from __future__ import annotations

import os
from pathlib import Path

from ctharmonize.domains import default_registry
from ctharmonize.errors import OutputExistsError

__all__ = ["ensure_sample_volume"]


def ensure_sample_volume(path: str | os.PathLike, kernel: str = "ge_bone", size: int = 128, slices: int = 16,
                         seed: int = 0, clinical: bool = False) -> str:
    """Return ``path`` (a ``.nii.gz``), simulating it first if it does not exist.

    The volume is one reconstruction (kernel domain ``kernel``, e.g. GE BONE) of the simulator's chest
    phantom ``seed``: float32 HU (``slices``, ``size``, ``size``), written with a JSON sidecar holding
    Manufacturer and ConvolutionKernel so the source domain resolves from the header. An existing
    file is never touched or regenerated. ``clinical``: the vendor's default FOV, centring, slice
    thickness and dose, and its nonlinear processing (the clinical preset's scanner; with ``size``
    512 its pixel spacing is that of real chest CT, e.g. 0.74 mm for GE).
    """
    path = Path(path)
    if path.exists():
        return os.fspath(path)
    from ctharmonize.io import write_volume
    from ctharmonize.simulation.phantom import generate_phantom
    from ctharmonize.simulation.scan import simulate_scan

    info = default_registry()[default_registry().validate_name(kernel)]
    if clinical:
        from ctharmonize.simulation.vendors import get_vendor

        spec = get_vendor(info.vendor)
        phantom = generate_phantom(seed=seed, size=size, slices=slices, fov_mm=spec.recon_fov_mm,
                                   fov_center_mm=spec.fov_center_mm, slice_thickness=spec.slice_thickness_mm)
        volume = simulate_scan(phantom, vendor=info.vendor, kernels=[kernel], seed=seed, ir_strength=1.0,
                               edge_strength=1.0)[kernel]
    else:
        phantom = generate_phantom(seed=seed, size=size, slices=slices)
        volume = simulate_scan(phantom, vendor=info.vendor, kernels=[kernel], seed=seed)[kernel]
    try:
        write_volume(volume, path, sidecar=True)
    except OutputExistsError:  # written meanwhile by a concurrent run
        pass
    return os.fspath(path)
