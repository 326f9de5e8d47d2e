"""Benchmark the clinical path: DICOM series in → harmonize → derived DICOM series out (issue 18 item 6).

Part 1 (harmonize options): the same slices through the bundle's harmonizer with the runtime options
torch offers on CPU, each against the reference-style loop (one slice at a time, fp32, eager) in the
same process: ``SliceHarmonizer`` as shipped (on CPU it freezes the path with TorchScript for volumes
of 8 x 512² voxels or more; the freeze is timed in, as in a one-volume CLI run), the same with
``compile=False`` (eager), channels-last, frozen TorchScript paths with and without
``optimize_for_inference``, bf16 autocast, and ONNX Runtime when it is installed. Prints slices/s, the
ratio to the reference and the largest HU difference.

Part 2 (pipeline): a ``--slices`` x 512 x 512 DICOM series (a simulated 512² scan repeated along z,
written by the project's writer) is read, harmonized with the default harmonizer (fp32, compiled on
CPU) and written as a derived series; the three parts are timed and compared with the reference loop
and with the eager harmonizer (``compile=False``).

    python benchmarks/bench_clinical_path.py                 # 300 slices
    python benchmarks/bench_clinical_path.py --slices 40     # quick
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ctharmonize.inference import load_bundle_harmonizer
from ctharmonize.io import read_volume, write_volume
from ctharmonize.simulation.phantom import generate_phantom
from ctharmonize.simulation.scan import simulate_scan

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "multipath_cyclegan_ct_harmonization"


@torch.no_grad()
def per_slice(fn: Callable[[torch.Tensor], torch.Tensor], hu: np.ndarray) -> np.ndarray:
    """Run ``fn`` (HU (1, 1, H, W) → HU) one slice at a time."""
    out = np.empty_like(hu)
    for k in range(hu.shape[0]):
        out[k] = fn(torch.from_numpy(hu[k])[None, None]).float().numpy()[0, 0]
    return out


def timed(fn: Callable, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def onnx_session(path_hu: torch.nn.Module, size: int):
    """An ONNX Runtime session of the HU path (None when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    folder = Path(tempfile.mkdtemp())
    try:
        file = folder / "path.onnx"
        torch.onnx.export(path_hu, (torch.zeros(1, 1, size, size),), str(file), input_names=["hu"],
                          output_names=["out"], dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # an exporter/runtime gap is a result, not a crash
        print(f"ONNX Runtime: not measured ({type(err).__name__}: {str(err).splitlines()[0]})")
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def with_compile(harmonizer, compile: bool | None):
    """A copy of the bundle's ``SliceHarmonizer`` with ``compile`` set and no frozen path kept yet."""
    other = copy.copy(harmonizer)
    other.compile = compile
    return other


def harmonize_options(harmonizer, hu: np.ndarray, source: str, target: str, rounds: int = 3) -> None:
    """Each option is timed right after the reference loop, ``rounds`` times; the median ratio is printed
    (robust to other load on the machine drifting during the run)."""
    path_hu = harmonizer.export(source, target)
    ref = per_slice(path_hu, hu)
    rows: dict[str, Callable[[], np.ndarray]] = {  # fresh copies: every round pays the freeze
        "SliceHarmonizer default (CPU: frozen, fp32)": lambda: with_compile(harmonizer, None)(hu, source, target),
        "SliceHarmonizer compile=False (eager)": lambda: with_compile(harmonizer, False)(hu, source, target),
    }
    last = path_hu.to(memory_format=torch.channels_last)
    rows["channels-last, 1 slice"] = lambda: per_slice(lambda x: last(x.to(memory_format=torch.channels_last)), hu)
    frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(harmonizer.export(source, target))))
    rows["TorchScript frozen, 1 slice"] = lambda: per_slice(frozen, hu)
    frozen_plain = torch.jit.freeze(torch.jit.script(harmonizer.export(source, target)))
    rows["TorchScript frozen, no optimize_for_inference"] = lambda: per_slice(frozen_plain, hu)

    def bf16(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return path_hu(x)

    rows["bf16 autocast, 1 slice"] = lambda: per_slice(bf16, hu)
    session = onnx_session(harmonizer.export(source, target), hu.shape[-1])
    if session is not None:
        rows["ONNX Runtime, 1 slice"] = lambda: per_slice(
            lambda x: torch.from_numpy(session.run(None, {"hu": x.numpy()})[0]), hu)
    print(f"{'option (median of ' + str(rounds) + ' paired rounds)':46s} slices/s  vs reference loop (1 slice, fp32, eager)")
    for name, fn in rows.items():
        ratios, speeds, out = [], [], ref
        for _ in range(rounds):
            t_ref, _ = timed(per_slice, path_hu, hu)
            t, out = timed(fn)
            ratios.append(t_ref / t)
            speeds.append(hu.shape[0] / t)
        diff = float(np.abs(np.asarray(out) - ref).max())
        print(f"{name:46s} {np.median(speeds):6.2f}  {np.median(ratios):4.2f}x   max |ΔHU| {diff:7.2f}")


def pipeline(harmonizer, slices: int, source: str, target: str) -> None:
    scan = simulate_scan(generate_phantom(seed=3, size=512, slices=16), vendor="ge", seed=3)[source]
    reps = -(-slices // scan.shape[0])
    array = np.concatenate([scan.array] * reps)[:slices]
    fov = None if scan.fov_mask is None else np.concatenate([scan.fov_mask] * reps)[:slices]
    volume = scan.with_array(array, fov_mask=fov) if fov is not None else scan.with_array(array)
    folder = Path(tempfile.mkdtemp())
    try:
        series = write_volume(volume, folder / "in_dicom")
        t_read, vol = timed(read_volume, series)
        from ctharmonize.inference import harmonize_volume

        t_ref, _ = timed(per_slice, harmonizer.export(source, target), vol.array)
        t_eager, _ = timed(harmonize_volume, vol, with_compile(harmonizer, False), source, target, "benchmark")
        t_harm, result = timed(harmonize_volume, vol, with_compile(harmonizer, None), source, target, "benchmark")
        t_write, _ = timed(write_volume, result, folder / "out_dicom")
        total = t_read + t_harm + t_write
        print(f"pipeline {slices} x 512 x 512: read {t_read:.1f} s, harmonize {t_harm:.1f} s, write {t_write:.1f} s, "
              f"total {total:.1f} s; reference loop (harmonize only) {t_ref:.1f} s: "
              f"harmonize {t_ref / t_harm:.2f}x, whole path {t_ref / total:.2f}x of the reference harmonize step; "
              f"harmonize with compile=False (eager) {t_eager:.1f} s: default {t_eager / t_harm:.2f}x of eager")
        if result.header.extra.get("spacing_resampled"):  # the harmonizer ran on fewer, coarser pixels
            print(f"  note: harmonized at the bundle's trained spacing ({result.header.extra['spacing_resampled']}); "
                  "the reference loop ran at 512²")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(BUNDLE))
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--option_slices", type=int, default=16, help="slices for part 1")
    parser.add_argument("--source", default="ge_bone")
    parser.add_argument("--target", default="siemens_b30f")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    harmonizer = load_bundle_harmonizer(args.bundle, device="cpu")
    print(f"bundle {args.bundle}; {args.source} -> {args.target}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; CPU capability {torch.backends.cpu.get_cpu_capability()}")
    scan = simulate_scan(generate_phantom(seed=4, size=512, slices=args.option_slices), vendor="ge", seed=4)
    harmonize_options(harmonizer, scan[args.source].array, args.source, args.target)
    pipeline(harmonizer, args.slices, args.source, args.target)


if __name__ == "__main__":
    main()
