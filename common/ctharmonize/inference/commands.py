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
    series: str | None = None,
    rules: str | None = None,
    allow_non_axial: bool = False,
    resample: bool = False,
    assume_rescale: str | None = None,
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
        series: SeriesInstanceUID or SeriesNumber of the series to harmonize in a study folder or
            DICOMDIR (default: the one CT axial original series; see ``ctharmonize series``).
        rules: series selection rules JSON (MONAI Deploy DICOMSeriesSelectorOperator format).
        allow_non_axial: harmonize sagittal/coronal reformats with the axial-trained network anyway.
        resample: NIfTI output of a tilted or unevenly spaced series: resample the result onto a
            regular grid (DICOM output keeps each slice's own position and needs no resampling).
        assume_rescale: "SLOPE,INTERCEPT" to assume for slices without rescale tags or with a
            RescaleType other than HU (default: refuse them).

    Returns:
        a one-line summary.
    """
    from ctharmonize.cli import rescale_pair
    from ctharmonize.domains import default_registry
    from ctharmonize.inference.bundle_generator import (
        bundle_model_name,
        load_bundle_generator,
        read_bundle_config,
    )
    from ctharmonize.inference.harmonize import harmonize_volume
    from ctharmonize.inference.source_domain import check_model_domain, resolve_source_domain
    from ctharmonize.io import check_output, check_volume_output_path, read_volume, write_volume
    from ctharmonize.io.nifti import is_nifti_path
    from ctharmonize.io.resample import require_regular, resample_to_regular
    from ctharmonize.io.slice_orientation import check_axial
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
    rescale = rescale_pair(assume_rescale)
    parser = read_bundle_config(bundle, trust=trust_bundle)
    generator = load_bundle_generator(bundle, device=device, weights=weights, trust=trust_bundle)
    check_model_domain(str(target), generator.domains, "target", bundle)
    volume = read_volume(input, series=series, rules=rules, slicewise=True, rescale_default=rescale)
    if not allow_non_axial:
        check_axial(volume, input)
    if is_nifti_path(out) and not resample:
        require_regular(volume, input)  # before the model runs
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
    if is_nifti_path(out) and not result.is_regular:
        result = resample_to_regular(result, path=input)
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
