"""``ctharmonize harmonize``: harmonize one CT volume (DICOM series or NIfTI) with a bundle."""

from __future__ import annotations

import os
import sys
import time

from ctharmonize.errors import ConfigError

__all__ = ["average_weights", "export", "harmonize"]


def harmonize(
    bundle: str,
    input: str,
    out: str,
    source: str | None = None,
    target: str | None = None,
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
    """Harmonize a chest CT volume to a target reconstruction kernel with a harmonization bundle.

    Args:
        bundle: bundle folder (holds configs/inference.json, whose ``harmonizer`` item is used, and models/model.pt).
        input: DICOM series folder, DICOM file, or .nii/.nii.gz (HU).
        out: output .nii/.nii.gz file, or a folder name for a derived DICOM series.
        source: source kernel domain (e.g. ge_bone); default: from the header's Manufacturer and ConvolutionKernel.
        target: target kernel domain (default: the bundle's target_kernel, e.g. siemens_b30f).
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
    from ctharmonize.inference.bundle_harmonizer import (
        bundle_default_target,
        bundle_model_name,
        load_bundle_harmonizer,
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
    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(None, f"--batch_size must be >= 1, got {batch_size}")
    registry = default_registry()
    if target is not None:
        registry.validate_name(str(target))
    if source is not None:
        registry.validate_name(str(source))
    check_volume_output_path(out)
    check_output(out, [input, bundle, weights], overwrite)
    rescale = rescale_pair(assume_rescale)
    parser = read_bundle_config(bundle, trust=trust_bundle)
    target = str(target) if target is not None else bundle_default_target(parser)
    harmonizer = load_bundle_harmonizer(parser=parser, device=device, weights=weights,
                                        batch_size=None if batch_size is None else int(batch_size), amp=bool(amp))
    check_model_domain(target, harmonizer.domains, "target", bundle)
    volume = read_volume(input, series=series, rules=rules, slicewise=True, rescale_default=rescale)
    if not allow_non_axial:
        check_axial(volume, input)
    if is_nifti_path(out) and not resample:
        require_regular(volume, input)  # before the model runs
    src = resolve_source_domain(volume, source, harmonizer.domains, path=input, registry=registry)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not quiet:
            print(f"\rharmonizing {src} -> {target}: {done}/{total} slices", end="", file=sys.stderr, flush=True)

    model_name = bundle_model_name(parser)
    if hasattr(harmonizer, "progress"):
        harmonizer.progress = progress
    result = harmonize_volume(volume, harmonizer, src, target, model_name=model_name)
    if not quiet:
        print(file=sys.stderr)
    if is_nifti_path(out) and not result.is_regular:
        result = resample_to_regular(result, path=input)
    written = write_volume(result, out, overwrite=overwrite, model_name=model_name, target_kernel=target)
    seconds = time.perf_counter() - started
    return f"{os.fspath(written)}: {src} -> {target}, {volume.shape[0]} slices in {seconds:.1f} s"


def average_weights(paths: str | list | tuple, out: str, overwrite: bool = False, bundle: str | None = None,
                    trust_bundle: bool = False) -> str:
    """Average the network weights of several checkpoints into one ``model.pt`` (checkpoint averaging).

    Args:
        paths: weights files (model.pt, selector candidates, or training checkpoints with ``--bundle``), a
            list or a comma-separated string; at least one.
        out: output state-dict file (written atomically).
        overwrite: replace an earlier ctharmonize output at ``out``.
        bundle: the bundle whose ``checkpoint_networks`` say which networks of a training checkpoint the
            model is (not needed for plain state dicts).
        trust_bundle: read the configs of a bundle that is not trusted otherwise.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.inference.weight_averaging import average_network_weights
    from ctharmonize.io.output_check import check_output

    files = comma_list(paths)
    check_output(out, [*files, bundle], overwrite)
    networks = None
    if bundle is not None:
        from ctharmonize.inference.bundle_harmonizer import read_bundle_config

        networks = read_bundle_config(bundle, trust=trust_bundle).get("checkpoint_networks")
    average_network_weights(files, out, overwrite=overwrite, networks=networks)
    print(f"{out}: mean of {len(files)} weight files", file=sys.stderr)
    return out


def export(bundle: str, out: str, source: str, target: str | None = None, overwrite: bool = False,
           weights: str | None = None, trust_bundle: bool = False) -> str:
    """Export one source -> target path of a bundle's harmonizer as TorchScript (HU in, HU out).

    Args:
        bundle: bundle folder (its ``harmonizer`` item is exported).
        out: output TorchScript file (.ts or .pt; written atomically).
        source: source kernel domain of the exported path.
        target: target kernel domain (default: the bundle's target_kernel).
        overwrite: replace an earlier ctharmonize output at ``out``.
        weights: checkpoint to use instead of the bundle's models/model.pt.
        trust_bundle: run the configs of a bundle that is not trusted otherwise.

    The file holds (B, 1, H, W) HU -> (B, 1, H, W) HU, H and W multiples of the network's spatial
    multiple (recorded with source, target and the HU window in the file's ``metadata.json``), the bundle's
    configs/metadata.json and inference.json, as ``python -m monai.bundle ckpt_export`` does.
    """
    import json
    from pathlib import Path

    import torch

    from ctharmonize.inference.bundle_harmonizer import (
        bundle_default_target,
        bundle_model_name,
        load_bundle_harmonizer,
        read_bundle_config,
    )
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output

    if Path(out).suffix not in (".ts", ".pt"):
        raise ConfigError(out, "the TorchScript output must end in .ts or .pt")
    check_output(out, [bundle, weights], overwrite)
    parser = read_bundle_config(bundle, trust=trust_bundle)
    target = str(target) if target is not None else bundle_default_target(parser)
    harmonizer = load_bundle_harmonizer(parser=parser, device="cpu", weights=weights)
    module = harmonizer.export(str(source), target)
    try:
        scripted = torch.jit.script(module)
    except Exception as err:
        raise ConfigError(Path(bundle) / "configs" / "inference.json",
                          f"the {source} -> {target} path cannot be compiled to TorchScript "
                          f"({type(err).__name__}: {str(err).splitlines()[0]})") from err
    info = {"model": bundle_model_name(parser), "source": str(source), "target": target,
            "hu_min": module.hu_min, "hu_max": module.hu_max, "spatial_multiple": module.spatial_multiple,
            "input": "(B, 1, H, W) float32 HU", "output": "(B, 1, H, W) float32 HU"}
    extra = {"metadata.json": json.dumps({**(parser.get("_meta_") or {}), "ctharmonize_export": info})}
    config = Path(bundle) / "configs" / "inference.json"
    extra["inference.json"] = config.read_text()
    with atomic_path(out, overwrite=overwrite, record=True) as tmp:
        torch.jit.save(scripted, str(tmp), _extra_files=extra)
    return f"{out}: {source} -> {target}, {info['model']}"
