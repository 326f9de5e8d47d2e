"""Speed of the CT simulator: one 256x256x64 subject, 2 vendors x 2 kernels (phantom included).

Target: under 60 s on 2 CPU cores. The reference is the textbook scikit-image pipeline
(``radon`` + ``iradon`` per slice, same views, 4 kernels -> 2 projections + 4 FBPs) timed on
one slice in this process and extrapolated to the same 64 slices.

    OMP_NUM_THREADS=2 python benchmarks/bench_simulation.py [--size 256 --slices 64]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=64)
    args = parser.parse_args()

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
