"""``ctharmonize harmonize``: harmonize one CT volume (DICOM series or NIfTI) with a bundle."""

from __future__ import annotations

import os
import sys
import time

from ctharmonize.errors import ConfigError

__all__ = ["average_weights", "harmonize"]


def harmonize(
    bundle: str,
    input: str,
    out: str,
    source: str | None = None,
    target: str = "siemens_b30f",
    device: str | None = None,
    batch_size: int | None = None,
    overwrite: bool = False,
    weights: str | None = None,
    amp: bool = True,
    quiet: bool = False,
    trust_bundle: bool = False,
) -> str:
    """Harmonize a chest CT volume to a target reconstruction kernel with a multipath cycleGAN bundle.

    Args:
        bundle: bundle folder (holds configs/inference.json and models/model.pt).
        input: DICOM series folder, DICOM file, or .nii/.nii.gz (HU).
        out: output .nii/.nii.gz file, or a folder name for a derived DICOM series.
        source: source kernel domain (e.g. ge_bone); default: from the header's Manufacturer and ConvolutionKernel.
        target: target kernel domain (default siemens_b30f, the paper's reference soft kernel).
        device: cpu, cuda or cuda:N (default: CUDA when available).
        batch_size: axial slices per forward pass (default 8 on CUDA, 2 on CPU, where larger
            batches are slower).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is ever replaced; the
            output is never the input, inside it or around it).
        weights: checkpoint to use instead of the bundle's models/model.pt.
        amp: bf16 autocast on CUDA (ignored on CPU).
        quiet: no progress output.
        trust_bundle: run the configs of a bundle that is neither shipped with ctharmonize nor recorded
            with ``ctharmonize trust-bundle`` (a bundle config is code: review it first).

    Returns:
        a one-line summary.
    """
    from ctharmonize.domains import default_registry
    from ctharmonize.inference.bundle_generator import (
        bundle_model_name,
        load_bundle_generator,
        read_bundle_config,
    )
    from ctharmonize.inference.harmonize import harmonize_volume
    from ctharmonize.inference.source_domain import check_model_domain, resolve_source_domain
    from ctharmonize.io import check_output, check_volume_output_path, read_volume, write_volume
    from ctharmonize.torch_device import resolve_device

    device = str(resolve_device(device)) if device else None
    if batch_size is None:
        from ctharmonize.inference import default_batch_size

        batch_size = default_batch_size(device or None)
    if int(batch_size) < 1:
        raise ConfigError(None, f"--batch_size must be >= 1, got {batch_size}")
    registry = default_registry()
    registry.validate_name(str(target))
    if source is not None:
        registry.validate_name(str(source))
    check_volume_output_path(out)
    check_output(out, [input, bundle, weights], overwrite)
    parser = read_bundle_config(bundle, trust=trust_bundle)
    generator = load_bundle_generator(bundle, device=device, weights=weights, trust=trust_bundle)
    check_model_domain(str(target), generator.domains, "target", bundle)
    volume = read_volume(input)
    src = resolve_source_domain(volume, source, generator.domains, path=input, registry=registry)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not quiet:
            print(f"\rharmonizing {src} -> {target}: {done}/{total} slices", end="", file=sys.stderr, flush=True)

    model_name = bundle_model_name(parser)
    result = harmonize_volume(
        volume, generator, src, str(target), batch_size=int(batch_size), device=device, amp=bool(amp),
        hu_min=float(parser.get("hu_min", -1024.0)), hu_max=float(parser.get("hu_max", 3072.0)),
        model_name=model_name, progress=progress,
    )
    if not quiet:
        print(file=sys.stderr)
    written = write_volume(result, out, overwrite=overwrite, model_name=model_name, target_kernel=str(target))
    seconds = time.perf_counter() - started
    return f"{os.fspath(written)}: {src} -> {target}, {volume.shape[0]} slices in {seconds:.1f} s"


def average_weights(paths: str | list | tuple, out: str, overwrite: bool = False) -> str:
    """Average the generator weights of several checkpoints into one ``model.pt`` (checkpoint averaging).

    Args:
        paths: weights files (model.pt, selector candidates or training checkpoints), a list or a
            comma-separated string; at least one.
        out: output state-dict file (written atomically).
        overwrite: replace an earlier ctharmonize output at ``out``.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.inference.weight_averaging import average_generator_weights
    from ctharmonize.io.output_check import check_output

    files = comma_list(paths)
    check_output(out, files, overwrite)
    average_generator_weights(files, out, overwrite=overwrite)
    print(f"{out}: mean of {len(files)} generator weight files", file=sys.stderr)
    return out
