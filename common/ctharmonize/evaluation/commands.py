"""CLI commands: ``emphysema``, ``evaluate``, ``select-checkpoint``, ``compare-models``, ``benchmark``, ``radiomics``,
``sensitivity``, ``posthoc-dice``, ``two-way-fid``, ``truth-table``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ctharmonize.domains.reference import DEFAULT_REFERENCE_KERNEL
from ctharmonize.errors import ConfigError

__all__ = ["benchmark", "compare_models", "emphysema", "evaluate", "posthoc_dice", "radiomics", "select_checkpoint",
           "sensitivity", "truth_table", "two_way_fid"]


def _parse_mapping(value: Any, what: str) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, json.JSONDecodeError) as err:
        raise ConfigError(None, f"{what} must be a JSON object, got {value!r}") from err
    if not isinstance(parsed, dict):
        raise ConfigError(None, f"{what} must be a JSON object, got {value!r}")
    return parsed


def _parse_paths(value: Any, what: str) -> list[list[str]] | None:
    """A JSON list (or list) of [source, target] kernel pairs."""
    if value is None:
        return None
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as err:
            raise ConfigError(None, f"{what} must be a JSON list of [source, target] pairs, got {value!r}") from err
    if not isinstance(parsed, list | tuple) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in parsed):
        raise ConfigError(None, f"{what} must be a list of [source, target] pairs, got {value!r}")
    return [[str(a), str(b)] for a, b in parsed]


def emphysema(
    input: str,  # noqa: A002 - the CLI flag name
    lung: str | None = None,
    backend: str = "threshold",
    threshold: float = -950.0,
    out: str | None = None,
    overwrite: bool = False,
) -> str:
    """LAA (%), Perc15 (HU), lung volume (mL), mean density (HU) and mass (g) per lung and both.

    Args:
        input: CT volume (DICOM folder/file or NIfTI) in HU.
        lung: lung mask (1 = right, 2 = left); default: segmented from the input with ``backend``.
        backend: lung segmentation backend.
        threshold: LAA threshold in HU.
        out: write the measures as JSON here (atomic); otherwise only printed.
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
    """
    from ctharmonize.evaluation.run import write_json
    from ctharmonize.io import check_output, read_volume
    from ctharmonize.metrics.emphysema import emphysema_measures

    if out is not None:
        check_output(out, [input, lung], overwrite)
    from ctharmonize.io.label_map import read_label_map

    volume = read_volume(input)
    if lung is not None:
        mask = read_label_map(lung, like=volume, allowed={0, 1, 2})
    else:
        from ctharmonize.segmentation import segment_lungs

        mask = np.asarray(segment_lungs(volume, backend=backend), dtype=np.uint8)
    measures = emphysema_measures(volume.array, mask, volume.spacing, threshold=float(threshold))
    doc = {"image": str(input), "lung": lung or f"segmented ({backend})", "threshold_hu": float(threshold),
           "measures": measures}
    if out is not None:
        write_json(doc, out, overwrite=overwrite, record=True)
    return json.dumps(doc["measures"], indent=2)


def evaluate(
    datalist: str,
    out: str,
    reference_kernel: str = DEFAULT_REFERENCE_KERNEL,
    paired_references: Any = None,
    backend: str = "threshold",
    mask_source: str = "auto",
    threshold: float = -950.0,
    split: str | None = None,
    body_composition: bool = True,
    similarity: bool = True,
    n_resamples: int = 1000,
    seed: int = 0,
    kl_bins: int = 10,
    html: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    bundle: str | None = None,
    target: str | None = None,
    harmonized_dir: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    weights: str | None = None,
    trust_bundle: bool = False,
    spacing_policy: str | None = None,
) -> str:
    """Cohort evaluation: per_scan.csv, summary.json, PNG plots and report.md in ``out``.

    Without ``--bundle`` the datalist's ``harmonized`` entries are evaluated; with it, the bundle's
    harmonizer first harmonizes the (``--split``) entries to ``--target`` into ``--harmonized_dir``.

    Args:
        datalist: datalist JSON; entries: image (original), kernel, subject, optional harmonized,
            target, lung (see docs/evaluation.md).
        out: output folder (refused if it exists, unless overwrite).
        bundle: harmonize with this bundle's ``harmonizer`` first (any method's bundle).
        target: with ``--bundle``: a target kernel domain (every other kernel is harmonized to it; default
            the bundle's target_kernel), or a JSON object source kernel -> target (only those are
            harmonized, e.g. the paired Table 1 form {"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard"}).
        harmonized_dir: with ``--bundle``: folder for the harmonized volumes (default ``<out>_harmonized``).
        device, batch_size, weights: with ``--bundle``: torch device, slices per pass, checkpoint instead of
            the bundle's models/model.pt.
        trust_bundle: run the configs of a bundle that is not trusted otherwise.
        spacing_policy: with ``--bundle``: a scan whose in-plane pixel spacing is outside the bundle's
            trained_pixel_spacing_mm is "resample"d in-plane to that range and back (default) or "refuse"d.
        reference_kernel: kernel all others are compared with (unpaired distributions).
        paired_references: JSON object kernel -> same-vendor reference kernel for paired scans
            (default {"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard", ...}).
        backend: lung / body-composition segmentation backend.
        mask_source: auto | datalist | original | reference | each.
        threshold: LAA threshold (HU).
        split: evaluate only this split.
        body_composition: Dice of muscle/SAT/VAT (harmonized vs original).
        similarity: PSNR/SSIM/NRMSE/NCC against the paired reference.
        n_resamples: bootstrap resamples; seed: their seed.
        kl_bins: histogram bins for KL divergence.
        html: also write report.html.
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        progress: show a progress bar.
    """
    from ctharmonize.data import datalist_entries, entry_paths
    from ctharmonize.evaluation.run import run_evaluation
    from ctharmonize.io import check_output

    scans = entry_paths(datalist_entries(datalist)[0])
    check_output(out, [datalist, bundle, weights, *scans], overwrite)
    entries: Any = datalist
    if bundle is not None:
        entries = _harmonize_with_bundle(bundle, datalist, out, target, split, harmonized_dir, device, batch_size,
                                         weights, trust_bundle, overwrite, progress, spacing_policy or "resample")
    elif target is not None or harmonized_dir is not None:
        raise ConfigError(None, "--target and --harmonized_dir need --bundle")
    elif spacing_policy is not None:
        raise ConfigError(None, "--spacing_policy needs --bundle (it applies to the bundle's harmonization)")
    summary = run_evaluation(
        entries, out, reference_kernel=reference_kernel,
        paired_references=_parse_mapping(paired_references, "paired_references"), backend=backend,
        mask_source=mask_source, threshold=float(threshold), split=split, body_composition=body_composition,
        similarity=similarity, n_resamples=int(n_resamples), seed=int(seed), kl_bins=int(kl_bins), html=html,
        overwrite=overwrite, progress=progress,
    )
    return f"{summary['n_scans']} scans evaluated; report: {Path(out) / 'report.md'}"


def _harmonize_with_bundle(bundle: str, datalist: str, out: str, target: Any, split: str | None,
                           harmonized_dir: str | None, device: str | None, batch_size: int | None,
                           weights: str | None, trust: bool, overwrite: bool, progress: bool,
                           spacing_policy: str = "resample") -> list[dict]:
    """``evaluate --bundle``: harmonize the datalist with the bundle's harmonizer; the entries to evaluate."""
    from ctharmonize.data import datalist_entries, entry_paths
    from ctharmonize.inference.bundle_harmonizer import (
        bundle_default_target,
        bundle_model_name,
        load_bundle_harmonizer,
        read_bundle_config,
    )
    from ctharmonize.inference.harmonize_datalist import harmonize_datalist
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.io import check_output
    from ctharmonize.torch_device import resolve_device

    check_spacing_policy(spacing_policy)
    folder = harmonized_dir or f"{Path(out)}_harmonized"
    check_output(folder, [datalist, bundle, weights, *entry_paths(datalist_entries(datalist)[0])], overwrite)
    parser = read_bundle_config(bundle, trust=trust)
    goal: Any = target
    if isinstance(target, str) and target.lstrip().startswith("{"):
        goal = _parse_mapping(target, "target")
    elif target is None:
        goal = bundle_default_target(parser)
    harmonizer = load_bundle_harmonizer(parser=parser, device=str(resolve_device(device)) if device else None,
                                        weights=weights, batch_size=batch_size, spacing_policy=spacing_policy)
    return harmonize_datalist(harmonizer, datalist, folder, goal, split=split, model_name=bundle_model_name(parser),
                              overwrite=overwrite, progress=progress)


def select_checkpoint(
    checkpoints: str,
    datalist: str,
    out: str,
    harmonizer: str | None = None,
    bundle: str | None = None,
    weights: Any = None,
    split: str | None = "validation",
    reference_kernel: str = DEFAULT_REFERENCE_KERNEL,
    backend: str = "threshold",
    mask_source: str = "auto",
    threshold: float = -950.0,
    kl_bins: int = 10,
    paths: Any = None,
    anatomy_paths: Any = None,
    limits: Any = None,
    overwrite: bool = False,
    device: str | None = None,
    batch_size: int | None = None,
    trust_bundle: bool = False,
) -> str:
    """Rank checkpoints by emphysema agreement (paper 000 eq. 1) and copy the best to out/model.pt.

    Args:
        checkpoints: folder of *.pt / *.pth files (epoch = last number in the file name).
        datalist: validation datalist JSON.
        harmonizer: 'package.module:factory'; factory(checkpoint_path) returns a callable
            harmonizer(volume_hu, source_kernel, target_kernel) -> volume_hu. Give this or ``--bundle``.
        bundle: the bundle whose ``harmonizer`` item, with each checkpoint as its weights, is scored
            (any method's bundle; training checkpoints are read with its checkpoint_networks).
        out: output folder (model.pt, checkpoint_ranking.csv, checkpoint_ranking.json).
        weights: JSON object metric -> weight (default {"mse_b50f_b30f": 0.5, "kl_bone_b30f": 0.25,
            "kl_standard_b30f": 0.25}).
        split: validation split to use (None: all entries).
        reference_kernel: target of every path.
        backend: lung segmentation backend; mask_source: auto | datalist | original | reference.
        threshold: LAA threshold (HU); kl_bins: KL histogram bins.
        paths: JSON list of [source, target] kernel paths to score (default: every kernel -> reference).
        anatomy_paths: JSON list of [source, target] paths also scored by muscle/SAT Dice (anat_<src>_<tgt>).
        limits: JSON object metric -> largest acceptable value, e.g. {"anat_bone_b30f": 0.1}; epochs
            over a limit rank last.
        overwrite: replace existing outputs.
        device, batch_size: with ``--bundle``: torch device and slices per forward pass.
        trust_bundle: run the configs of a bundle that is not trusted otherwise.
    """
    from ctharmonize.evaluation.checkpoint_selection import harmonizer_factory
    from ctharmonize.evaluation.checkpoint_selection import select_checkpoint as _select
    from ctharmonize.io.output_check import check_not_overlapping, check_parent_writable
    from ctharmonize.torch_device import resolve_device

    if (harmonizer is None) == (bundle is None):
        raise ConfigError(None, "give exactly one of --bundle (a bundle folder) and --harmonizer (package.module:factory)")
    check_not_overlapping(out, [checkpoints, datalist, bundle])
    check_parent_writable(out)
    factory = harmonizer_factory(harmonizer, bundle, device=str(resolve_device(device)) if device else None,
                                 batch_size=batch_size, trust=trust_bundle)
    ranking = _select(
        checkpoints, datalist, factory, out, metric_weights=_parse_mapping(weights, "weights"),
        overwrite=overwrite, split=split, reference_kernel=reference_kernel, backend=backend,
        mask_source=mask_source, threshold=float(threshold), kl_bins=kl_bins, paths=_parse_paths(paths, "paths"),
        anatomy_paths=_parse_paths(anatomy_paths, "anatomy_paths"), metric_limits=_parse_mapping(limits, "limits"),
    )
    best = ranking[0]
    within = "" if best.get("feasible", True) else "; no checkpoint is within the limits"
    return (f"best epoch {best['epoch']} (weighted rank {best['weighted_rank']:g}{within}); "
            f"model: {Path(out) / 'model.pt'}")


def compare_models(
    per_scan: Any,
    reference: str,
    out: str | None = None,
    kernels: Any = "ge_bone,ge_standard",
    metrics: Any = "dice_muscle,dice_sat",
    overwrite: bool = False,
) -> str:
    """Cohen's d between models on per-scan Dice (paper 000 Table 3 form).

    Args:
        per_scan: JSON object ``{"model name": "path/to/per_scan.csv", ...}`` (from ``evaluate`` runs).
        reference: the model in Cohen's d's first group (e.g. the tissue-guided model).
        out: optional JSON file for the table.
        kernels, metrics: comma-separated kernels and per-scan columns to compare.
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).

    Returns:
        The table as Markdown.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.evaluation.model_comparison import compare_models as _compare
    from ctharmonize.evaluation.run import write_json

    sources = _parse_mapping(per_scan, "per_scan")
    if out is not None:
        from ctharmonize.io import check_output

        check_output(out, list(sources.values()), overwrite)
    metric_list = comma_list(metrics)
    table = _compare(sources, reference, kernels=comma_list(kernels), metrics=metric_list)
    if out is not None:
        write_json(table, out, overwrite=overwrite, record=True)
    lines = [f"| Cohen's d: {reference} vs | kernel | " + " | ".join(metric_list) + " |",
             "| --- | --- | " + " | ".join("---" for _ in metric_list) + " |"]
    for model, by_kernel in table.items():
        for kernel, cells in by_kernel.items():
            vals = " | ".join(f"{c['d']:.2f} ({c['category']})" for c in cells.values())
            lines.append(f"| {model} | {kernel} | {vals} |")
    return "\n".join(lines)


def benchmark(
    bundles: Any,
    datalist: str,
    out: str,
    split: str = "test",
    baseline: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    amp: bool | str | None = None,
    overwrite: bool = False,
    panel_subject: str | None = None,
    trust_bundle: bool = False,
    backend: str = "threshold",
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    spacing_policy: str = "resample",
    radiomics: bool = True,
    distribution: bool = True,
    distribution_slices: int = 8,
) -> str:
    """Same-data leaderboard of every method: leaderboard.csv/.md/.json, bars.png, panel.png in ``out``.

    Harmonizes the ``--split`` of a simulated datalist with each bundle, "none" and the classical baseline
    (docs/benchmark.md: paths, columns, better directions).

    Args:
        bundles: comma-separated bundle folders to rank (any method's bundle).
        datalist: datalist JSON with ground_truth, labels and lung (``ctharmonize simulate``).
        out: output folder (refused if it exists, unless overwrite).
        split: the split benchmarked.
        baseline: the classical baseline bundle (default bundles/kernel_normalization_ct_harmonization;
            '' for none); added unless already in ``--bundles``.
        device, batch_size: torch device and slices per pass for every bundle (default each bundle's).
        amp: inference precision for every bundle, "auto", "bf16" or "none" (default each bundle's).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        panel_subject: subject shown in panel.png (default the first with a paired scan).
        trust_bundle: run the configs of bundles that are not trusted otherwise.
        backend: lung / body-composition segmentation backend.
        n_resamples, seed: bootstrap resamples of the LAA-950 RMSE CI and their seed.
        progress: show progress bars.
        spacing_policy: a scan whose in-plane pixel spacing is outside a bundle's trained_pixel_spacing_mm is
            "resample"d in-plane to that range and back (default) or "refuse"d (an error).
        radiomics: add the paired paths' radiomics CCC columns (93 pyradiomics features, docs/radiomics.md).
        distribution: add the FID / KID columns in the CT feature space and (with radiomics) the % of radiomic
            features aligned with the target kernel (Welch, alpha 0.01), papers 003 / 004.
        distribution_slices: evenly spaced axial slices per volume embedded for FID / KID.
    """
    from ctharmonize.evaluation.benchmark import run_benchmark
    from ctharmonize.torch_device import resolve_device

    doc = run_benchmark(
        bundles, datalist, out, split=split, baseline=baseline,
        device=str(resolve_device(device)) if device else None, batch_size=batch_size, amp=amp, overwrite=overwrite,
        panel_subject=panel_subject, trust_bundle=trust_bundle, backend=backend, n_resamples=int(n_resamples),
        seed=int(seed), progress=progress, spacing_policy=spacing_policy, radiomics=bool(radiomics),
        distribution=bool(distribution), distribution_slices=int(distribution_slices),
    )
    return f"{len(doc['methods'])} methods x {len(doc['rows']) // max(len(doc['methods']), 1)} paths; " \
           f"leaderboard: {Path(out) / 'leaderboard.md'}"


def radiomics(
    datalist: str,
    out: str,
    pairs: Any = None,
    harmonized: str | None = None,
    split: str | None = None,
    roi: str = "auto",
    normalization: str = "zscore",
    overwrite: bool = False,
    progress: bool = True,
) -> str:
    """Radiomics reproducibility (paper 002): features.csv, table2/table3 .md/.csv, radiomics.json, ccc.png in ``out``.

    For each kernel pair SRC:REF and each subject with both scans, the 93 pyradiomics features (6 classes, shape
    excluded, force2D, binWidth 25 HU) in a soft-tissue ROI; Lin's CCC per feature class (paper and conventional
    forms) and PSNR/SSIM/NCC on [0, 1] images ([-1000, 900] HU) of the SRC scan ("Input") and, with
    ``--harmonized``, of its harmonized version against the REF scan (docs/radiomics.md).

    Args:
        datalist: datalist JSON; entries with image, kernel, subject and optional labels (``ctharmonize simulate``).
        out: output folder (refused if it exists, unless overwrite).
        pairs: comma-separated SRC:REF kernel pairs, e.g. ge_bone:ge_standard,siemens_b50f:siemens_b30f (default:
            siemens_b50f:siemens_b30f, siemens_b70f:siemens_b30f, ge_bone:ge_standard, ge_lung:ge_standard where present).
        harmonized: the SRC images harmonized to REF: a datalist JSON (entries with source_kernel, or with
            harmonized and target; it may be --datalist itself), or a ``harmonize-cohort`` folder or its manifest.csv;
            or NAME=PATH[,NAME=PATH...] to compare several methods, one table row each (e.g.
            CycleGAN=out/cg,CVS-CT=out/cvsct).
        split: use only this split of the datalist (default every entry).
        roi: soft-tissue ROI from the entry's "labels" map where it has one, else an HU threshold ("auto"), only
            "labels", or only "threshold" ([-100, 200] HU inside the body of the REF scan).
        normalization: of each feature over the comparison's images before the paper-form CCC: "zscore" or "minmax".
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        progress: show a progress bar.
    """
    from ctharmonize.evaluation.radiomics_reproducibility import run_radiomics

    doc = run_radiomics(datalist, out, pairs=pairs, harmonized=harmonized, split=split, roi=roi,
                        normalization=normalization, overwrite=overwrite, progress=progress)
    n = sum(p["n_pairs"] for p in doc["pairs"])
    return f"{len(doc['pairs'])} kernel pairs, {n} subject pairs, {doc['settings']['n_features']} features; " \
           f"tables: {Path(out) / 'table2.md'}, {Path(out) / 'table3.md'}"


def sensitivity(
    bundles: Any,
    datalist: str,
    source: str,
    target: str,
    out: str,
    sigmas: Any = None,
    slices: int = 8,
    split: str = "test",
    seed: int = 0,
    mode: str = "output",
    window: Any = None,
    device: str | None = None,
    batch_size: int | None = None,
    amp: bool | str | None = None,
    overwrite: bool = False,
    trust_bundle: bool = False,
    spacing_policy: str = "resample",
    progress: bool = True,
) -> str:
    """Self-adversarial sensitivity (paper 004 Fig. 9): sensitivity.csv/.json/.png in ``out``.

    Adds Gaussian noise of SD sigma ([-1, 1] units of each bundle's HU window) to slices of the ``--source``
    images and plots MSE and SSIM of the harmonized noisy input against the harmonized clean input, one line
    per bundle (docs/evaluation.md).

    Args:
        bundles: comma-separated bundle folders (any method's bundle), one line each.
        datalist: datalist JSON; its ``--source``-kernel entries of ``--split`` are the inputs.
        source, target: kernel domains of the path harmonized.
        out: output folder (refused if it exists, unless overwrite).
        sigmas: comma-separated noise SDs in [-1, 1] units (default 0,0.05,...,0.5; 0.05 = 102.4 HU in the
            [-1024, 3072] HU window).
        slices: slices per volume, evenly spaced.
        split: the split used ('all': every entry).
        seed: seed of the noise (the same noise for every bundle).
        mode: "output" (noisy vs clean output) or "cycle" (the paper's form: noise on the source -> target
            output, harmonized back, against the clean input).
        window: HU_MIN,HU_MAX of a harmonizer without hu_min/hu_max (bundle harmonizers have them).
        device, batch_size: torch device and slices per pass for every bundle (default each bundle's).
        amp: inference precision for every bundle, "auto", "bf16" or "none" (default each bundle's).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        trust_bundle: run the configs of bundles that are not trusted otherwise.
        spacing_policy: "resample" (default) or "refuse" scans outside a bundle's trained_pixel_spacing_mm.
        progress: show progress bars.
    """
    from ctharmonize.evaluation.sensitivity_run import run_sensitivity
    from ctharmonize.torch_device import resolve_device

    doc = run_sensitivity(
        bundles, datalist, source, target, out, sigmas=sigmas, slices=int(slices), split=split, seed=int(seed),
        mode=mode, window=window, device=str(resolve_device(device)) if device else None, batch_size=batch_size,
        amp=amp, overwrite=overwrite, trust_bundle=trust_bundle, spacing_policy=spacing_policy, progress=progress,
    )
    return f"{len(doc['methods'])} methods x {len(doc['sigmas'])} sigmas on {doc['n_slices']} slices; " \
           f"figure: {Path(out) / 'sensitivity.png'}"


def posthoc_dice(
    bundle: str,
    datalist: str,
    source: str,
    target: str,
    out: str,
    harmonized: str | None = None,
    slices: int = 8,
    split: str = "test",
    device: str | None = None,
    batch_size: int | None = None,
    trust_bundle: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> str:
    """Post-hoc segmentation Dice (paper 004 Table V): posthoc_dice.md/.csv/.json in ``out``.

    The bundle's target-domain segmenter on the target scans (upper bound), on the source scans (lower bound)
    and on each method's harmonized source scans, against the source labels; the source segmenter on the source
    scans. Dice and IoU per class and scan, mean ± SD over scans, background left out (docs/evaluation.md).

    Args:
        bundle: a segmentation-renormalized CycleGAN bundle (network SegRenormCycleGANPairs: one segmenter per
            domain), e.g. bundles/segrenorm_cyclegan_ct_harmonization.
        datalist: datalist JSON; its ``--source``- and ``--target``-kernel entries of ``--split``, each with a
            ``labels`` tissue-code map (``ctharmonize simulate``).
        source, target: kernel domains; the bundle's segmenters of each.
        out: output folder (refused if it exists, unless overwrite).
        harmonized: the source scans harmonized to the target, NAME=PATH[,NAME=PATH...] (one table row each, e.g.
            SegRenorm=out/srn,CycleGAN=out/cg) or one PATH (row "harmonized"); each PATH a ``harmonize-cohort``
            folder, its manifest.csv or a datalist JSON. Default: the bound rows only.
        slices: slices per scan, evenly spaced.
        split: the split scored ('all': every entry).
        device, batch_size: torch device and slices per pass (default the bundle's).
        trust_bundle: run the configs of a bundle that is not trusted otherwise.
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        progress: show a progress bar.
    """
    from ctharmonize.evaluation.posthoc_dice_run import run_posthoc_dice
    from ctharmonize.torch_device import resolve_device

    doc = run_posthoc_dice(
        bundle, datalist, source, target, out, harmonized, slices=int(slices), split=split,
        device=str(resolve_device(device)) if device else None, batch_size=batch_size, trust_bundle=trust_bundle,
        overwrite=overwrite, progress=progress,
    )
    return f"{len(doc['rows'])} rows on {doc['n_source_scans']} {source} and {doc['n_target_scans']} {target} " \
           f"scans; table: {Path(out) / 'posthoc_dice.md'}"


def two_way_fid(
    bundles: str,
    datalist: str,
    out: str,
    pairs: str | None = None,
    split: str = "test",
    baseline: str | None = None,
    slices: int = 8,
    device: str | None = None,
    batch_size: int | None = None,
    trust_bundle: bool = False,
    spacing_policy: str = "resample",
    seed: int = 0,
    overwrite: bool = False,
    inception: str | None = None,
) -> str:
    """FID / KID in the CT feature space, mean of both directions per kernel pair (paper 003 Table I form):
    two_way_fid.md/.csv/.json in ``out``.

    Args:
        bundles: comma-separated bundle folders (any method's); "none" and the classical baseline are added.
        datalist: datalist JSON; the ``--split`` scans of the pairs' kernels.
        out: output folder (refused if it exists, unless overwrite).
        pairs: kernel pairs a:b[,c:d...] (default siemens_b50f:siemens_b30f, ge_bone:ge_standard,
            ge_bone:siemens_b30f, ge_standard:siemens_b30f); a bundle without a pair's kernels gets "not supported".
        split: the split scored.
        baseline: the classical baseline bundle (default the shipped one; '' for none).
        slices: evenly spaced axial slices per scan, harmonized and embedded.
        device, batch_size: torch device and slices per pass (default each bundle's).
        trust_bundle: run the configs of bundles that are not trusted otherwise.
        spacing_policy: "resample" or "refuse" scans outside a bundle's trained pixel spacing.
        seed: KID subsets.
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        inception: a user's Inception network file (TorchScript or torch.export, (B, 3, 299, 299) -> (B, D)) for
            the standard FID instead of the CT feature network.
    """
    from ctharmonize.evaluation.two_way_fid import run_two_way_fid
    from ctharmonize.torch_device import resolve_device

    doc = run_two_way_fid(bundles, datalist, out, pairs=pairs, split=split, baseline=baseline, slices=int(slices),
                          device=str(resolve_device(device)) if device else None, batch_size=batch_size,
                          trust_bundle=trust_bundle, spacing_policy=spacing_policy, seed=int(seed),
                          overwrite=overwrite, inception=inception)
    return f"{len(doc['rows'])} rows; table: {Path(out) / 'two_way_fid.md'}"


def truth_table(
    datalist: str,
    out: str,
    bundles: str = "",
    harmonized: str | None = None,
    split: str = "test",
    slices: int = 8,
    min_lung_pixels: int = 100,
    physics: bool = True,
    combat: bool = True,
    device: str | None = None,
    batch_size: int | None = None,
    trust_bundle: bool = False,
    spacing_policy: str = "resample",
    overwrite: bool = False,
    progress: bool = True,
) -> str:
    """Images against the noise-free ground truth, before and after harmonization (paper 001 Table I form):
    truth_table.md/.csv/.json, truth_table_slices.csv and truth_table_physics.csv in ``out``.

    Per 2-D slice: NRMSE, SSIM, PSNR on [-1, 1] inside the FOV and |delta| LAA-950, Perc15, lung mass in the GT lung
    mask, mean +- SD over slices for "none", each method and ComBat, overall and per kernel group, dose and
    rendition x dose; d' (NPWE) and the NPS per volume (docs/evaluation.md).

    Args:
        datalist: datalist JSON whose entries have kernel, ground_truth and lung (ctharmonize simulate; --preset
            force_family adds rendition, kernel_group and dose).
        out: output folder (refused if it exists, unless overwrite).
        bundles: comma-separated bundle folders whose harmonizer maps to 'ground_truth' (e.g.
            bundles/mtf_harmonizer_ct_harmonization); default none (the NH and ComBat rows only).
        harmonized: images already harmonized to ground_truth, NAME=PATH[,NAME=PATH...] (or one PATH), each a
            harmonize-cohort folder or its manifest.csv.
        split: the split scored ('all': every entry).
        slices: slices per subject, evenly spaced among those with lung; 0: all.
        min_lung_pixels: a slice with fewer GT lung pixels inside the FOV has no biomarkers.
        physics: also measure d', NPS and MTF per volume before and after.
        combat: also the ComBat rows (needs the extra 'combat': neuroCombat).
        device, batch_size: torch device and slices per pass (default each bundle's).
        trust_bundle: run the configs of bundles that are not trusted otherwise.
        spacing_policy: "resample" or "refuse" scans outside a bundle's trained pixel spacing.
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        progress: show a progress bar.
    """
    from ctharmonize.evaluation.truth_table import run_truth_table
    from ctharmonize.torch_device import resolve_device

    doc = run_truth_table(datalist, out, bundles=bundles, harmonized=harmonized, split=split, slices=int(slices),
                          min_lung_pixels=int(min_lung_pixels), physics=physics, combat=combat,
                          device=str(resolve_device(device)) if device else None, batch_size=batch_size,
                          trust_bundle=trust_bundle, spacing_policy=spacing_policy, overwrite=overwrite,
                          progress=progress)
    return f"{len(doc['methods'])} methods on {doc['n_slices']} slices of {doc['n_scans']} scans; " \
           f"table: {Path(out) / 'truth_table.md'}"
