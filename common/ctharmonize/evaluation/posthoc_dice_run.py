"""``ctharmonize posthoc-dice``: paper 004's Table V from files, with a segmentation-renormalized CycleGAN bundle.

The bundle's network (:class:`~ctharmonize.networks.SegRenormCycleGANPairs`) holds one segmenter per domain of
each pair (:meth:`~ctharmonize.networks.SegRenormCycleGANPairs.segmenter`; a domain in several pairs: that of the
pair joining ``source`` and ``target`` where there is one). It is loaded the one way bundles are loaded
(:func:`~ctharmonize.inference.load_bundle_harmonizer`: trust check, config, weights, device) and its
translator's segmenters are used. Rows (:mod:`.posthoc_dice`):

* ``Source Segmentor → Source Image``: the source segmenter on the ``source``-kernel scans vs their labels;
* ``Target Segmentor → Target Image`` (upper bound): the target segmenter on the ``target``-kernel scans;
* ``Target Segmentor → Source Image`` (lower bound): the target segmenter on the unharmonized source scans;
* ``Target Segmentor → Harmonized Image (<method>)``: the target segmenter on each method's harmonized source
  scans (a ``harmonize-cohort`` folder or its manifest.csv, or a datalist; :func:`load_harmonized`) vs the
  *source* labels (the anatomy is the source scan's).

Per scan: ``slices`` evenly spaced axial slices (:func:`~ctharmonize.evaluation.sensitivity_run.slice_indices`,
the harmonized scan's slices are its source scan's), HU clipped to the bundle's [hu_min, hu_max] and scaled to
[-1, 1], reflect-padded at the bottom/right to a multiple of the segmenter's ``spatial_multiple`` (16), fp32,
argmax over the class logits, cropped; the reference is the entry's ``labels`` map (simulator tissue codes)
through :func:`~ctharmonize.transforms.tissue_codes_to_classes` (``CHEST_CT_TISSUE_CLASSES``). One case = one
scan's slices: Dice and IoU per class and case, then mean ± SD over the cases (background left out; a class
absent from both maps of a case is left out of that class's mean). Slices are segmented at the scan's own
pixel spacing (no trained-spacing resampling). Output folder (written atomically): ``posthoc_dice.md``
(header with the command line and the datalist, then the table), ``posthoc_dice.csv``
(:func:`~ctharmonize.evaluation.posthoc_dice.posthoc_dice_csv`), ``posthoc_dice.json`` (settings, rows, per-case
values). docs/evaluation.md.
"""

from __future__ import annotations

import datetime
import inspect
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ctharmonize.errors import ConfigError, DatalistError, InputError, LabelMapError, UnknownDomainError
from ctharmonize.evaluation.posthoc_dice import (
    ROW_HARMONIZED,
    ROW_SOURCE_ON_SOURCE,
    ROW_TARGET_ON_SOURCE,
    ROW_TARGET_ON_TARGET,
    PosthocDiceRow,
    case_overlaps,
    posthoc_dice_csv,
    posthoc_dice_markdown,
    scores_from_overlaps,
)
from ctharmonize.evaluation.sensitivity_run import DEFAULT_SLICES, slice_indices
from ctharmonize.networks.nets.tissue_segmenter import CHEST_CT_TISSUE_CLASSES

__all__ = ["run_posthoc_dice", "segment_slices"]

#: row key -> (Table V label, role)
_ROWS = {"source_on_source": (ROW_SOURCE_ON_SOURCE, "source reference"),
         "target_on_target": (ROW_TARGET_ON_TARGET, "upper bound"),
         "target_on_source": (ROW_TARGET_ON_SOURCE, "lower bound")}


@torch.no_grad()
def segment_slices(segmenter: nn.Module, hu: np.ndarray, hu_min: float, hu_max: float,
                   device: str | torch.device = "cpu", batch_size: int = 1) -> np.ndarray:
    """Class maps (N, Y, X) int64 of HU slices (N, Y, X): clip to [hu_min, hu_max], scale to [-1, 1], reflect-pad
    (replicate where the pad exceeds the image) at the bottom/right to the segmenter's ``spatial_multiple`` (16
    without one), fp32 logits, argmax over classes, crop."""
    from ctharmonize.transforms import hu_to_unit

    net = segmenter.to(device).eval()
    multiple = int(getattr(segmenter, "spatial_multiple", 16))
    hu = np.asarray(hu, dtype=np.float32)
    h, w = hu.shape[1:]
    ph, pw = (-h) % multiple, (-w) % multiple
    out = np.empty(hu.shape, dtype=np.int64)
    for start in range(0, hu.shape[0], max(int(batch_size), 1)):
        x = hu_to_unit(torch.from_numpy(hu[start:start + batch_size]).unsqueeze(1), hu_min, hu_max).to(device)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        logits = net(x).float()[..., :h, :w]
        out[start:start + batch_size] = logits.argmax(dim=1).cpu().numpy()
    return out


def _methods(harmonized: Any) -> dict[str, str]:
    from ctharmonize.evaluation.radiomics_pairs import parse_harmonized

    if harmonized is None or (isinstance(harmonized, Mapping | str) and not harmonized):
        return {}
    return parse_harmonized(harmonized)


def _segmenters(bundle: str | os.PathLike, source: str, target: str, device: str | None, batch_size: int | None,
                trust: bool) -> tuple[dict[str, nn.Module], dict[str, str], tuple[float, float], torch.device, int,
                                      str]:
    """The bundle's source and target segmenters (and their submodule names), its HU window, the device, the
    slices per pass and the model name; one-line errors naming the bundle's inference.json."""
    from ctharmonize.evaluation.sensitivity import harmonizer_window
    from ctharmonize.inference.bundle_harmonizer import (
        INFERENCE_CONFIG,
        bundle_model_name,
        load_bundle_harmonizer,
        read_bundle_config,
    )
    from ctharmonize.inference.slice_harmonizer import default_batch_size

    config = Path(bundle) / INFERENCE_CONFIG
    parser = read_bundle_config(bundle, trust=trust)
    harmonizer = load_bundle_harmonizer(parser=parser, device=device, batch_size=batch_size)
    network = getattr(harmonizer, "translator", None)
    if not callable(getattr(network, "segmenter", None)):
        kind = type(network).__name__ if network is not None else type(harmonizer).__name__
        raise ConfigError(config, f"the bundle's network ({kind}) has no per-domain segmenters; posthoc-dice needs "
                                  "a segmentation-renormalized CycleGAN bundle (ctharmonize.networks."
                                  "SegRenormCycleGANPairs, e.g. bundles/segrenorm_cyclegan_ct_harmonization)")
    chosen: dict[str, nn.Module] = {}
    for role, domain, other in (("source", source, target), ("target", target, source)):
        try:
            chosen[role] = network.segmenter(domain, other)
        except UnknownDomainError as err:
            raise UnknownDomainError(config, f"--{role} {domain}: {err.problem}") from None
    names = {role: next((n for n, m in network.named_modules() if m is seg), "?") for role, seg in chosen.items()}
    window = harmonizer_window(harmonizer)
    dev = torch.device(device) if device is not None else torch.device(
        getattr(harmonizer, "device", "cuda" if torch.cuda.is_available() else "cpu"))
    batch = int(batch_size) if batch_size is not None else int(getattr(harmonizer, "batch_size", 0) or
                                                                default_batch_size(dev))
    return chosen, names, window, dev, batch, bundle_model_name(parser)


def _labelled(entries: Sequence[Mapping[str, Any]], kernel: str, split: str | None, where: Path | None,
              need_subject: bool) -> list[Mapping[str, Any]]:
    chosen = [e for e in entries if e.get("kernel") == kernel and not e.get("source_kernel")]
    if not chosen:
        kernels = sorted({str(e.get("kernel")) for e in entries if not e.get("source_kernel")})
        raise DatalistError(where, f"no {kernel!r} entries in split {split!r} (kernels there: "
                                   f"{', '.join(kernels) or 'none'})")
    for e in chosen:
        if not e.get("labels"):
            raise DatalistError(where, f"entry {e['image']}: no 'labels' map (tissue codes, as ctharmonize simulate "
                                       "writes them); posthoc-dice scores the segmenters against it")
        if need_subject and not e.get("subject"):
            raise DatalistError(where, f"entry {e['image']}: 'subject' missing; harmonized scans are matched to "
                                       "their source scan by subject")
    return chosen


def _harmonized_images(methods: Mapping[str, str], sources: Sequence[Mapping[str, Any]], source: str,
                       target: str, where: Path | None) -> dict[str, list[str]]:
    """Method -> the harmonized image of each source entry (in order); a missing one is a one-line refusal."""
    from ctharmonize.evaluation.radiomics_pairs import load_harmonized

    subjects = [str(e["subject"]) for e in sources]
    twice = sorted({s for s in subjects if subjects.count(s) > 1})
    if methods and twice:
        raise DatalistError(where, f"subject {twice[0]!r} has several {source!r} scans; harmonized scans are "
                                   "matched by subject")
    images: dict[str, list[str]] = {}
    for method, path in methods.items():
        found = load_harmonized(path)
        images[method] = []
        for e in sources:
            image = found.get((str(e["subject"]), source, target))
            if image is None:
                listing = Path(path) / "manifest.csv" if Path(path).is_dir() else Path(path)
                raise DatalistError(listing, f"method {method!r}: no harmonized {source}->{target} image of "
                                          f"{e['image']} (subject {e['subject']!r})")
            images[method].append(image)
    return images


def _case(prediction: np.ndarray, reference: np.ndarray) -> dict[str, tuple[float, float]]:
    return case_overlaps(prediction, reference, CHEST_CT_TISSUE_CLASSES)


def run_posthoc_dice(
    bundle: str | os.PathLike,
    datalist: str | os.PathLike,
    source: str,
    target: str,
    out: str | os.PathLike,
    harmonized: Mapping[str, str | os.PathLike] | str | None,
    slices: int = DEFAULT_SLICES,
    split: str | None = "test",
    device: str | None = None,
    batch_size: int | None = None,
    trust_bundle: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Table V of ``bundle``'s segmenters on the ``split`` of ``datalist``; writes the folder ``out`` atomically.

    Args:
        bundle: a segmentation-renormalized CycleGAN bundle (its ``harmonizer``'s translator has ``segmenter``).
        datalist: datalist JSON; its ``source``- and ``target``-kernel entries of ``split`` (with ``labels``).
        source, target: kernel domains (the bundle's segmenters of each).
        out: output folder (refused if it exists, unless ``overwrite`` and it is an earlier ctharmonize output).
        harmonized: {method name: harmonize-cohort folder, its manifest.csv or a datalist} (or
            ``"NAME=PATH[,NAME=PATH...]"``, or one PATH: method "harmonized"); None or {}: the bound rows only.
        slices: evenly spaced slices per scan.
        split: the split scored (None or "all": every entry).
        device, batch_size: torch device and slices per forward pass (default the bundle's).
        trust_bundle: run a bundle that is not trusted otherwise.
        command: the command line recorded (default: the ``ctharmonize posthoc-dice`` one of these arguments).

    Returns:
        The posthoc_dice.json document.
    """
    from ctharmonize.data import datalist_entries, entry_paths
    from ctharmonize.domains import default_registry
    from ctharmonize.evaluation.benchmark import _datalist_info
    from ctharmonize.evaluation.run import write_json
    from ctharmonize.io import read_volume
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.label_map import read_label_map
    from ctharmonize.io.output_check import check_output
    from ctharmonize.transforms import tissue_codes_to_classes

    methods = _methods(harmonized)
    command_line = _command_line({**locals(), "harmonized": methods})
    if int(slices) < 1:
        raise ConfigError(None, f"--slices must be >= 1, got {slices}")
    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(None, f"--batch_size must be >= 1, got {batch_size}")
    registry = default_registry()
    registry.validate_name(str(source))
    registry.validate_name(str(target))
    if source == target:
        raise ConfigError(None, f"--source and --target are both {source!r}")
    entries, where = datalist_entries(datalist, split)
    check_output(out, [datalist, bundle, *methods.values(), *entry_paths(entries)], overwrite)
    sources = _labelled(entries, source, split, where, need_subject=bool(methods))
    targets = _labelled(entries, target, split, where, need_subject=False)
    segmenters, segmenter_names, (hu_min, hu_max), dev, batch, model_name = _segmenters(
        bundle, source, target, device, batch_size, trust_bundle)
    harmonized_images = _harmonized_images(methods, sources, source, target, where)

    def segment(role: str, hu: np.ndarray) -> np.ndarray:
        return segment_slices(segmenters[role], hu, hu_min, hu_max, dev, batch)

    def read(entry: Mapping[str, Any]) -> tuple[Any, list[int], np.ndarray]:
        volume = read_volume(entry["image"])
        indices = slice_indices(volume.shape[0], int(slices))
        codes = read_label_map(entry["labels"], like=volume)
        try:
            classes = tissue_codes_to_classes(codes[indices])
        except ValueError as err:
            raise LabelMapError(entry["labels"], f"not a tissue-code map: {err}") from None
        return volume, indices, classes

    cases: dict[str, list[dict[str, Any]]] = {k: [] for k in (*_ROWS, *methods)}

    def record(key: str, entry: Mapping[str, Any], image: str, indices: list[int], overlaps: Mapping) -> None:
        cases[key].append({"image": os.fspath(image), "labels": os.fspath(entry["labels"]),
                           "subject": entry.get("subject"), "slices": indices,
                           "dice": {c: d for c, (d, _) in overlaps.items()},
                           "iou": {c: j for c, (_, j) in overlaps.items()}})

    bar = tqdm(total=len(sources) + len(targets), desc="posthoc-dice", unit="scan", disable=not progress)
    for n, entry in enumerate(sources):
        volume, indices, classes = read(entry)
        hu = volume.array[indices]
        record("source_on_source", entry, entry["image"], indices, _case(segment("source", hu), classes))
        record("target_on_source", entry, entry["image"], indices, _case(segment("target", hu), classes))
        for method, images in harmonized_images.items():
            done = read_volume(images[n])
            if done.shape != volume.shape:
                raise InputError(images[n], f"harmonized image shape {done.shape} differs from that of its source "
                                            f"scan {entry['image']} {volume.shape}")
            record(method, entry, images[n], indices, _case(segment("target", done.array[indices]), classes))
        bar.update(1)
    for entry in targets:
        volume, indices, classes = read(entry)
        record("target_on_target", entry, entry["image"], indices,
               _case(segment("target", volume.array[indices]), classes))
        bar.update(1)
    bar.close()

    def scores(key: str) -> dict[str, Any]:
        return scores_from_overlaps([{c: (k["dice"][c], k["iou"][c]) for c in k["dice"]} for k in cases[key]])

    rows = [PosthocDiceRow(*_ROWS[k], scores(k)) for k in _ROWS]
    rows += [PosthocDiceRow(ROW_HARMONIZED.format(method=m), "harmonized", scores(m), m) for m in methods]
    keys = [*_ROWS, *methods]
    doc = {
        "command": command or command_line,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "datalist": _datalist_info(datalist), "split": split, "source": source, "target": target,
        "bundle": {"path": os.fspath(bundle), "model": model_name, "segmenters": segmenter_names},
        "harmonized": {m: os.fspath(p) for m, p in methods.items()},
        "settings": {"slices_per_volume": int(slices), "device": str(dev), "batch_size": batch,
                     "hu_window": [hu_min, hu_max], "classes": list(CHEST_CT_TISSUE_CLASSES),
                     "background": "left out", "precision": "fp32",
                     "labels": "the entry's 'labels' tissue codes -> CHEST_CT_TISSUE_CLASSES "
                               "(tissue_codes_to_classes, nodules as lung); harmonized scans against their "
                               "source scan's labels",
                     "case": "one scan's slices; Dice/IoU per class and case, then mean and SD (ddof 1) over cases"},
        "n_source_scans": len(sources), "n_target_scans": len(targets),
        "rows": [{"key": k, "label": r.label, "role": r.role, "method": r.method,
                  "scores": {c: vars(s) for c, s in r.scores.items()}, "cases": cases[k]}
                 for k, r in zip(keys, rows, strict=True)],
    }
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        (tmp / "posthoc_dice.csv").write_text(posthoc_dice_csv(rows), encoding="utf-8")
        write_json(doc, tmp / "posthoc_dice.json")
        (tmp / "posthoc_dice.md").write_text(_markdown(doc, rows), encoding="utf-8")
    return doc


def _markdown(doc: Mapping[str, Any], rows: Sequence[PosthocDiceRow]) -> str:
    info, s = doc["datalist"], doc["settings"]
    lines = ["# Post-hoc segmentation Dice (paper 004, Table V)", "",
             f"Bundle `{doc['bundle']['path']}` ({doc['bundle']['model']}), {doc['source']} → {doc['target']}. "
             f"Datalist `{info['path']}`" + (f" ({info['name']})" if info["name"] else "") +
             f", split `{doc['split']}`: {doc['n_source_scans']} {doc['source']} and {doc['n_target_scans']} "
             f"{doc['target']} scans, {s['slices_per_volume']} evenly spaced slices each. {doc['date']}.", ""]
    if info["description"]:
        lines += [f"> {info['description']}", ""]
    lines += ["Command:", "", "```bash", doc["command"], "```", "",
              "Segmenters: source "
              f"`{doc['bundle']['segmenters']['source']}`, target `{doc['bundle']['segmenters']['target']}`. "
              "Dice (DC) and IoU per class against the scan's tissue labels (harmonized scans: their source scan's "
              "labels); one case per scan, mean ± SD over the scans; background left out; 'mean' = unweighted mean "
              "over the classes; – = the class is absent from every case. Upper bound: the target segmenter in its "
              "own domain; lower bound: on the unharmonized source scans. Definitions: docs/evaluation.md.", "",
              "## DC (mean ± SD)", "", posthoc_dice_markdown(rows, iou=False, sd=True),
              "## DC / IoU", "", posthoc_dice_markdown(rows)]
    if doc["harmonized"]:
        lines += ["Harmonized scans:", "", *(f"- {m}: `{p}`" for m, p in doc["harmonized"].items()), ""]
    return "\n".join(lines)


def _command_line(args: Mapping[str, Any]) -> str:
    """The ``ctharmonize posthoc-dice`` command line of these :func:`run_posthoc_dice` arguments (required ones,
    and the others where they differ from their defaults; ``harmonized`` as NAME=PATH,...)."""
    words = ["ctharmonize", "posthoc-dice"]
    for name, param in inspect.signature(run_posthoc_dice).parameters.items():
        value = args[name]
        if name == "command" or (param.default is not inspect.Parameter.empty and value == param.default):
            continue
        if name == "harmonized":
            if value:
                words += ["--harmonized", ",".join(f"{m}={os.fspath(p)}" for m, p in value.items())]
        elif isinstance(value, bool):
            words.append(f"--{name}" if value else f"--no{name}")
        else:
            words += [f"--{name}", os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return shlex.join(words)
