"""Speed of the CT simulator: one 256x256x64 subject, 2 vendors x 2 kernels (phantom included).

Target: under 60 s on 2 CPU cores. The reference is the textbook scikit-image pipeline
(``radon`` + ``iradon`` per slice, same views, 4 kernels -> 2 projections + 4 FBPs) timed on
one slice in this process and extrapolated to the same 64 slices.

    OMP_NUM_THREADS=2 python benchmarks/bench_simulation.py [--size 256 --slices 64]

``--clinical`` times the clinical preset instead: one 512 x 512 x 64 subject x 4 kernels (both
vendors, vendor processing at strength 1) and the same at 256 x 256 x 64 in this process, with the
phantom / scan (projection + FBP) / processing split and the 512 : 256 ratio of each (4x the pixels).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np


def _clinical_subject(size: int, slices: int) -> dict[str, float]:
    """Seconds of phantom, scan (projection + FBP) and processing for one subject on both vendors."""
    import ctharmonize.simulation.scan as scan_module
    from ctharmonize.simulation import generate_phantom, simulate_scan
    from ctharmonize.simulation.dataset import PRESETS

    preset = PRESETS["clinical"]
    spent = {"processing": 0.0}
    original = scan_module.apply_processing

    def timed(*args: Any, **kwargs: Any) -> np.ndarray:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent["processing"] += time.perf_counter() - t

    t0 = time.perf_counter()
    ph = generate_phantom(seed=0, size=size, slices=slices)
    t1 = time.perf_counter()
    scan_module.apply_processing = timed
    try:
        for vendor in ("siemens", "ge"):
            simulate_scan(ph, vendor, seed=0, ir_strength=preset["ir_strength"], edge_strength=preset["edge_strength"])
    finally:
        scan_module.apply_processing = original
    t2 = time.perf_counter()
    return {"phantom": t1 - t0, "scan": t2 - t1 - spent["processing"], "processing": spent["processing"],
            "total": t2 - t0}


def clinical(slices: int) -> None:
    """The ``--clinical`` benchmark: 512² vs 256² (same process), processing on."""
    load0 = os.getloadavg()[0]
    _clinical_subject(64, 1)  # warm-up: imports, finufft/skimage first calls
    small = _clinical_subject(256, slices)
    large = _clinical_subject(512, slices)
    print(f"clinical preset (processing on), {slices} slices, 2 vendors x 2 kernels:")
    print("| matrix | total | phantom | scan (projection + FBP) | processing |")
    print("|---|---|---|---|---|")
    for name, t in (("256²", small), ("512²", large)):
        print(f"| {name} | {t['total']:.1f} s | {t['phantom']:.1f} s | {t['scan']:.1f} s | {t['processing']:.1f} s |")
    ratio = " | ".join(f"{large[k] / small[k]:.1f}x" for k in ("total", "phantom", "scan", "processing"))
    print(f"| 512² / 256² | {ratio} |")
    print(f"load average at the start {load0:.2f}, at the end (1, 5, 15 min): "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--clinical", action="store_true",
                        help="time the clinical preset: 512² vs 256², processing on, phantom/scan/processing split")
    args = parser.parse_args()
    if args.clinical:
        clinical(args.slices)
        return

    from ctharmonize.simulation import generate_phantom, simulate_scan
    from ctharmonize.simulation.scan import scan_geometry

    t0 = time.perf_counter()
    ph = generate_phantom(seed=0, size=args.size, slices=args.slices)
    t1 = time.perf_counter()
    for vendor in ("siemens", "ge"):
        simulate_scan(ph, vendor, seed=0)
    t2 = time.perf_counter()
    total = t2 - t0
    print(f"ctharmonize.simulation: {args.size}x{args.size}x{args.slices}, 2 vendors x 2 kernels: "
          f"{total:.1f} s (phantom {t1 - t0:.1f} s, scans {t2 - t1:.1f} s)")

    from skimage.transform import iradon, radon

    img = ph.fine_hu[args.slices // 2]
    geom = scan_geometry(img.shape[-1], ph.spacing[0] / ph.fine_factor, 0.45)
    theta = np.degrees(geom.theta)
    r0 = time.perf_counter()
    sino = radon(img, theta=theta, circle=False)
    r1 = time.perf_counter()
    iradon(sino, theta=theta, filter_name="hann", circle=False, output_size=args.size)
    r2 = time.perf_counter()
    ref = args.slices * (2 * (r1 - r0) + 4 * (r2 - r1)) + (t1 - t0)
    print(f"reference (skimage radon/iradon per slice, extrapolated from 1 slice): {ref:.1f} s")
    print(f"speed-up vs reference: {ref / total:.1f}x; target < 60 s: {'met' if total < 60 else 'MISSED'}")
    print(f"load average (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
