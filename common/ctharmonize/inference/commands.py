"""``ctharmonize harmonize``: harmonize one CT volume (DICOM series or NIfTI) with a bundle."""

from __future__ import annotations

import os
import sys
import time

from ctharmonize.errors import ConfigError

__all__ = ["average_weights", "export", "harmonize", "harmonize_cohort"]


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
    amp: bool | str = "auto",
    quiet: bool = False,
    trust_bundle: bool = False,
    series: str | None = None,
    rules: str | None = None,
    allow_non_axial: bool = False,
    resample: bool = False,
    assume_rescale: str | None = None,
    spacing_policy: str = "resample",
) -> str:
    """Harmonize a chest CT volume to a target reconstruction kernel with a harmonization bundle.

    Args:
        bundle: bundle folder (holds configs/inference.json, whose ``harmonizer`` item is used, and models/model.pt).
        input: DICOM series folder, DICOM file, or .nii/.nii.gz (HU).
        out: output .nii/.nii.gz file, or a folder name for a derived DICOM series.
        source: source kernel domain (e.g. ge_bone); default: from the header's Manufacturer and ConvolutionKernel.
        target: target kernel domain (default: the bundle's target_kernel, e.g. siemens_b30f).
        device: cpu, cuda or cuda:N (default: CUDA when available).
        batch_size: axial slices per forward pass (default 8 on CUDA, 1 on CPU, where larger
            batches are slower).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is ever replaced; the
            output is never the input, inside it or around it).
        weights: checkpoint to use instead of the bundle's models/model.pt.
        amp: bf16 autocast: "auto" (default: on CUDA, fp32 on CPU), "bf16" (CPU too: about 2x faster
            there, measurements change slightly, see the model card) or "none" (fp32; also --noamp).
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
        spacing_policy: an in-plane pixel spacing outside the bundle's trained_pixel_spacing_mm is
            "resample"d in-plane to that range and back (default; a notice says so) or "refuse"d.

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
    from ctharmonize.inference.slice_harmonizer import amp_mode
    from ctharmonize.inference.source_domain import check_model_domain, resolve_source_domain
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.io import check_output, check_volume_output_path, read_volume, write_volume
    from ctharmonize.io.nifti import is_nifti_path
    from ctharmonize.io.resample import require_regular, resample_to_regular
    from ctharmonize.io.slice_orientation import check_axial
    from ctharmonize.torch_device import resolve_device

    device = str(resolve_device(device)) if device else None
    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(None, f"--batch_size must be >= 1, got {batch_size}")
    check_spacing_policy(spacing_policy)
    amp = amp_mode(amp)
    registry = default_registry()
    if target is not None:
        registry.validate_target(str(target))
    if source is not None:
        registry.validate_name(str(source))
    check_volume_output_path(out)
    check_output(out, [input, bundle, weights], overwrite)
    rescale = rescale_pair(assume_rescale)
    parser = read_bundle_config(bundle, trust=trust_bundle)
    target = str(target) if target is not None else bundle_default_target(parser)
    harmonizer = load_bundle_harmonizer(parser=parser, device=device, weights=weights,
                                        batch_size=None if batch_size is None else int(batch_size), amp=amp,
                                        spacing_policy=spacing_policy)
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
    result = harmonize_volume(volume, harmonizer, src, target, model_name=model_name, path=input)
    if not quiet:
        print(file=sys.stderr)
    if is_nifti_path(out) and not result.is_regular:
        result = resample_to_regular(result, path=input)
    written = write_volume(result, out, overwrite=overwrite, model_name=model_name, target_kernel=target)
    seconds = time.perf_counter() - started
    resampled = " (resampled in-plane to the bundle's trained pixel spacing and back)" \
        if result.header.extra.get("spacing_resampled") else ""
    return f"{os.fspath(written)}: {src} -> {target}, {volume.shape[0]} slices in {seconds:.1f} s{resampled}"


def harmonize_cohort(
    datalist: str,
    bundle: str,
    out: str,
    target: str | None = None,
    split: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    amp: bool | str = "auto",
    overwrite: bool = False,
    trust_bundle: bool = False,
    progress: bool = True,
    spacing_policy: str = "resample",
) -> str:
    """Harmonize every scan of a datalist (a whole cohort): resumable, shardable over torchrun ranks, with a manifest.

    Each scan becomes ``out/<index>_<subject>_<kernel>_to_<target>.nii.gz`` (written atomically) and a row of
    ``out/manifest_shards/rank<R>_of_<W>.csv`` (input path and sha256, output, bundle name and version, source
    and target kernel, seconds). Run it again after a crash or kill: finished scans are skipped. Under
    ``torchrun --nproc_per_node N`` each rank takes every N-th scan on its own GPU, and rank 0 writes
    ``out/manifest.csv`` when all are done.

    Args:
        datalist: datalist JSON (``ctharmonize validate-datalist``).
        bundle: bundle folder (its ``harmonizer`` item is used).
        out: the cohort's output folder (created; reused by a resumed run).
        target: target kernel domain (default: the bundle's target_kernel).
        split: harmonize only this split (default: every entry).
        device: cpu, cuda or cuda:N (default: this rank's GPU under torchrun, else CUDA when available).
        batch_size: axial slices per forward pass.
        amp: bf16 autocast: "auto" (default: on CUDA, fp32 on CPU), "bf16" (CPU too: about 2x faster
            there, measurements change slightly, see the model card) or "none" (fp32; also --noamp).
        overwrite: redo scans harmonized from another input, bundle version or target.
        trust_bundle: run the configs of a bundle that is not trusted otherwise.
        progress: a progress bar per rank.
        spacing_policy: a scan whose in-plane pixel spacing is outside the bundle's trained_pixel_spacing_mm is
            "resample"d in-plane to that range and back (default; a notice per scan) or "refuse"d (the run stops
            at it; finished scans stay done).
    """
    from ctharmonize.domains import default_registry
    from ctharmonize.engines.distributed import init_distributed, is_distributed
    from ctharmonize.inference.bundle_harmonizer import (
        bundle_default_target,
        bundle_model_name,
        load_bundle_harmonizer,
        read_bundle_config,
    )
    from ctharmonize.inference.cohort import harmonize_cohort as run_cohort
    from ctharmonize.inference.slice_harmonizer import amp_mode
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.torch_device import resolve_device

    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(None, f"--batch_size must be >= 1, got {batch_size}")
    check_spacing_policy(spacing_policy)
    amp = amp_mode(amp)
    if target is not None:
        default_registry().validate_target(str(target))
    if "MASTER_ADDR" in os.environ and os.environ.get("WORLD_SIZE", "1") != "1":
        rank_device = init_distributed()  # torchrun: gloo on CPU, NCCL and cuda:LOCAL_RANK on GPUs
        if device is None or device == "cuda":
            device = str(rank_device)
    try:
        device = str(resolve_device(device)) if device else None
        parser = read_bundle_config(bundle, trust=trust_bundle)
        goal = str(target) if target is not None else bundle_default_target(parser)
        harmonizer = load_bundle_harmonizer(parser=parser, device=device, amp=amp,
                                            batch_size=None if batch_size is None else int(batch_size),
                                            spacing_policy=spacing_policy)
        meta = parser.get("_meta_", {}) or {}
        result = run_cohort(harmonizer, datalist, out, goal, split=split,
                            bundle_name=str(meta.get("name") or os.path.basename(os.path.abspath(bundle))),
                            bundle_version=str(meta.get("version") or ""), model_name=bundle_model_name(parser),
                            overwrite=overwrite, progress=progress)
    finally:
        distributed = is_distributed()
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    where = (f"manifest {result.manifest}" if result.manifest is not None else f"shard {result.shard}" + (
        " (once every rank has finished, run the command again without RANK/WORLD_SIZE to write manifest.csv)"
        if result.world_size > 1 and not distributed else ""))
    rank = f"rank {result.rank}/{result.world_size}: " if result.world_size > 1 else ""
    return (f"{out}: {rank}{result.harmonized} scans harmonized, {result.already_done} already done, "
            f"{result.jobs} in the cohort ({result.skipped} entries already in their target kernel); {where}")


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


def merge_weights(paths: str | list | tuple, out: str, overwrite: bool = False) -> str:
    """Merge separately trained parts of one model (e.g. the pairs of a CycleGAN bundle) into one ``model.pt``.

    Args:
        paths: plain state-dict files (each run's ``models/model.pt``), a list or a comma-separated
            string; at least two, no key in two of them.
        out: output state-dict file (written atomically).
        overwrite: replace an earlier ctharmonize output at ``out``.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.inference.weight_merging import merge_network_weights
    from ctharmonize.io.output_check import check_output

    files = comma_list(paths)
    check_output(out, files, overwrite)
    merged = merge_network_weights(files, out, overwrite=overwrite)
    print(f"{out}: {len(merged)} tensors from {len(files)} weight files", file=sys.stderr)
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
