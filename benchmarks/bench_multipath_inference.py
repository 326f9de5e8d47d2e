"""Benchmark slice-wise inference of the multipath cycleGAN bundle: batched ``SliceHarmonizer`` against a
reference-style loop (one slice at a time, fp32, no batching, as in the authors' inference script).

Uses the shipped model configuration (``configs/inference.json``: domains, ngf, n_blocks) and
``models/model.pt`` when present, else random weights of the same architecture (the output says
which; speed does not depend on the weights). The input is a synthetic HU volume (Z = ``--slices``,
``--size`` x ``--size``) with a circular FOV. Both methods run in the same process on each device
(CPU, and CUDA when available) and the script prints slices/s and the ratio; it also checks that
both give the same HU (fp32 on CPU; bf16 AMP on GPU is compared loosely).

    python benchmarks/bench_multipath_inference.py                       # 512 x 512 x 16
    python benchmarks/bench_multipath_inference.py --size 256 --slices 8 # quick
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ctharmonize.inference import SliceHarmonizer, load_generator_weights, read_bundle_config
from ctharmonize.transforms import hu_to_unit, unit_to_hu

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
def reference_loop(path: torch.nn.Module, hu: np.ndarray, device: torch.device) -> np.ndarray:
    """One slice per forward pass, fp32, no padding logic (size is a multiple of 4)."""
    out = np.empty_like(hu)
    for k in range(hu.shape[0]):
        x = hu_to_unit(torch.from_numpy(hu[k])[None, None].to(device))
        out[k] = unit_to_hu(path(x)).cpu().numpy()[0, 0]
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
    parser.add_argument("--size", type=int, default=512, help="in-plane size (multiple of 4)")
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--source", default="ge_bone")
    parser.add_argument("--target", default="siemens_b30f")
    parser.add_argument("--bundle", default=str(BUNDLE))
    args = parser.parse_args()
    if args.size % 4:
        parser.error("--size must be a multiple of 4")

    config = read_bundle_config(args.bundle)
    generator = config.get_parsed_content("network_def")
    weights = Path(config.get_parsed_content("ckpt_path"))
    if weights.is_file():
        load_generator_weights(generator, weights)
        which = f"weights {weights}"
    else:
        which = f"RANDOM weights (no {weights})"
    generator.eval()
    n_params = sum(p.numel() for p in generator.parameters())
    print(f"model: MultipathGenerator ngf={generator.ngf} domains={list(generator.domains)} "
          f"({n_params / 1e6:.2f} M parameters), {which}")
    print(f"path {args.source} -> {args.target}; volume {args.slices} x {args.size} x {args.size}; "
          f"torch threads {torch.get_num_threads()}")

    hu, fov = synthetic_volume(args.slices, args.size)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        path = generator.path(args.source, args.target).to(device).eval()
        harmonizer = SliceHarmonizer(path, batch_size=args.batch_size, device=device, amp=True)
        warm = hu[: min(2, args.slices)]
        reference_loop(path, warm, device)
        harmonizer(warm)
        t_ref, ref = timed(reference_loop, device, path, hu, device)
        t_new, new = timed(harmonizer, device, hu, fov)
        diff = float(np.abs(new[fov] - ref[fov]).max())
        amp = "bf16 AMP" if harmonizer.amp else "fp32"
        print(f"[{device.type}] reference loop (1 slice, fp32): {args.slices / t_ref:8.2f} slices/s ({t_ref:.2f} s)")
        print(f"[{device.type}] SliceHarmonizer (batch {args.batch_size}, {amp}): {args.slices / t_new:8.2f} slices/s "
              f"({t_new:.2f} s)")
        print(f"[{device.type}] speed-up {t_ref / t_new:.2f}x; max |HU difference| inside FOV {diff:.3f}")


if __name__ == "__main__":
    main()
