"""Benchmark slice-wise inference of any bundle's ``harmonizer``: batched ``SliceHarmonizer`` against a
reference-style loop (one slice at a time, fp32, no batching, as in the authors' inference script).

The bundle's ``harmonizer`` item (``configs/inference.json``) and its ``models/model.pt`` are used; the
reference loop runs the same weights through ``harmonizer.export(source, target)`` (the HU-in / HU-out
path). The input is a synthetic HU volume (Z = ``--slices``, ``--size`` x ``--size``) with a circular
FOV. Both run in the same process on each device (CPU, and CUDA when available); the script prints
slices/s, the ratio, and the largest HU difference (fp32 on CPU; bf16 AMP on GPU is compared loosely).

    python benchmarks/bench_inference.py                                   # multipath, 512 x 512 x 16
    python benchmarks/bench_inference.py --bundle bundles/kernel_normalization_ct_harmonization
    python benchmarks/bench_inference.py --size 256 --slices 8             # quick
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ctharmonize.inference import load_bundle_harmonizer

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "multipath_cyclegan_ct_harmonization"


def synthetic_volume(slices: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """HU (Z, Y, X) float32: body-like noise inside a circular FOV, -1024 outside; and the FOV mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    fov = (yy - (size - 1) / 2) ** 2 + (xx - (size - 1) / 2) ** 2 <= (size / 2) ** 2
    hu = rng.normal(-300.0, 400.0, size=(slices, size, size)).astype(np.float32)
    hu[:, ~fov] = -1024.0
    return hu, np.broadcast_to(fov, hu.shape).copy()


@torch.no_grad()
def reference_loop(path_hu: torch.nn.Module, hu: np.ndarray, device: torch.device) -> np.ndarray:
    """One slice per forward pass of the HU-in / HU-out path, fp32, no padding (size is a multiple of the
    network's spatial multiple)."""
    out = np.empty_like(hu)
    for k in range(hu.shape[0]):
        out[k] = path_hu(torch.from_numpy(hu[k])[None, None].to(device)).cpu().numpy()[0, 0]
    return out


def timed(fn, device: torch.device, *args) -> tuple[float, np.ndarray]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="in-plane size (a multiple of the network's)")
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--source", default="ge_bone")
    parser.add_argument("--target", default="siemens_b30f")
    parser.add_argument("--bundle", default=str(BUNDLE))
    args = parser.parse_args()

    hu, fov = synthetic_volume(args.slices, args.size)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        harmonizer = load_bundle_harmonizer(args.bundle, device=str(device), batch_size=args.batch_size, amp=True)
        if args.size % harmonizer.spatial_multiple:
            parser.error(f"--size must be a multiple of {harmonizer.spatial_multiple}")
        net = harmonizer.translator
        n_params = sum(p.numel() for p in net.parameters()) + sum(b.numel() for b in net.buffers())
        print(f"[{device.type}] model: {type(net).__name__} domains={list(harmonizer.domains)} "
              f"({n_params / 1e6:.3f} M parameters and buffers) from {args.bundle}")
        print(f"[{device.type}] path {args.source} -> {args.target}; volume {args.slices} x {args.size} x {args.size}; "
              f"torch threads {torch.get_num_threads()}")
        path_hu = harmonizer.export(args.source, args.target).to(device)
        warm = hu[: min(2, args.slices)]
        reference_loop(path_hu, warm, device)
        harmonizer(warm, args.source, args.target)
        t_ref, ref = timed(reference_loop, device, path_hu, hu, device)
        t_new, new = timed(harmonizer, device, hu, args.source, args.target, fov)
        diff = float(np.abs(new[fov] - ref[fov]).max())
        amp = "bf16 AMP" if harmonizer.amp else "fp32"
        print(f"[{device.type}] reference loop (1 slice, fp32): {args.slices / t_ref:8.2f} slices/s ({t_ref:.2f} s)")
        print(f"[{device.type}] SliceHarmonizer (batch {args.batch_size}, {amp}): {args.slices / t_new:8.2f} slices/s "
              f"({t_new:.2f} s)")
        print(f"[{device.type}] ratio {t_ref / t_new:.2f}x; max |HU difference| inside FOV {diff:.3f}")


if __name__ == "__main__":
    main()
