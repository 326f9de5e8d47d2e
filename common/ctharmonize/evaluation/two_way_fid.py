"""FID and KID in the CT feature space averaged over both directions of a kernel pair (paper 003's Table I form).

For a pair (a, b) and a method, direction a → b embeds the harmonized a scans of the split and compares them with
the real b scans of the split (every subject: unpaired, as in paper 003); b → a the same way round. Each scan
contributes its :func:`~ctharmonize.evaluation.benchmark_distribution.sampled_slices` (only those slices are
harmonized: the harmonizers are slice-wise), embedded by
:class:`~ctharmonize.evaluation.benchmark_distribution.SliceEmbedder` (the shipped ``CTKernelFeatures``, 128-d).
"none" is the images as reconstructed (FID between the two kernels). Values in this space are not comparable with
paper 003's Inception FID.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ctharmonize.errors import ConfigError, DatalistError
from ctharmonize.evaluation.benchmark import plan_methods
from ctharmonize.evaluation.benchmark_distribution import (
    DISTRIBUTION_SLICES,
    SliceEmbedder,
    distribution_columns,
    sampled_slices,
)

__all__ = ["DEFAULT_PAIRS", "parse_pairs", "run_two_way_fid", "two_way_rows"]

#: paper 003's kernel pairs on this project's domains: within vendor, then across vendors to the reference kernel
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("siemens_b50f", "siemens_b30f"),
    ("ge_bone", "ge_standard"),
    ("ge_bone", "siemens_b30f"),
    ("ge_standard", "siemens_b30f"),
)


def parse_pairs(pairs: str | Sequence[Any] | None) -> list[tuple[str, str]]:
    """``"a:b,c:d"`` or ``[["a", "b"], ...]`` → ``[("a", "b"), ...]``; None: :data:`DEFAULT_PAIRS`."""
    if pairs is None:
        return list(DEFAULT_PAIRS)
    items = [p for p in pairs.split(",") if p.strip()] if isinstance(pairs, str) else list(pairs)
    out = []
    for item in items:
        parts = [s.strip() for s in item.split(":")] if isinstance(item, str) else [str(s) for s in item]
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise ConfigError(None, f"--pairs: {item!r} is not two different kernels 'a:b'")
        out.append((parts[0], parts[1]))
    return out


def two_way_rows(
    methods: Sequence[tuple[str, Any]],
    scans: Mapping[str, Sequence[Any]],
    pairs: Sequence[tuple[str, str]],
    embed: SliceEmbedder,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per method × pair: ``fid_ab``, ``fid_ba``, ``fid`` (their mean), ``kid_ab``, ``kid_ba``, ``kid``.

    Args:
        methods: ``(name, harmonizer)``; harmonizer None: "none" (the images as they are). A harmonizer whose
            ``domains`` lack a direction's kernels gives NaN there (status "not supported").
        scans: kernel → :class:`~ctharmonize.io.Volume` list (the split's scans of that kernel).
        pairs: the kernel pairs (a, b).
        embed: the slice embedder (its ``count`` slices per scan).
    """
    from ctharmonize.inference.harmonize import harmonize_volume

    def subvolume(volume: Any) -> Any:
        index = sampled_slices(volume.shape[0], embed.count)
        fov = None if volume.fov_mask is None else volume.fov_mask[index]
        positions = None if volume.slice_positions is None else volume.slice_positions[index]
        return dataclasses.replace(volume, array=np.ascontiguousarray(volume.array[index]), fov_mask=fov,
                                   slice_positions=positions, slice_datasets=None, source_dataset=None)

    real = {k: [embed(v.array) for v in scans.get(k, ())] for k in {d for p in pairs for d in p}}
    rows = []
    for name, harmonizer in methods:
        for a, b in pairs:
            row: dict[str, Any] = {"method": name, "pair": f"{a}<->{b}", "a": a, "b": b, "status": "ok",
                                   "n_a": len(scans.get(a, ())), "n_b": len(scans.get(b, ()))}
            for src, trg, tag in ((a, b, "ab"), (b, a, "ba")):
                values = {"fid_ct": math.nan, "kid_ct": math.nan}
                if not scans.get(src) or not scans.get(trg):
                    row["status"] = "no scans"
                elif harmonizer is not None and not {src, trg} <= set(harmonizer.domains):
                    row["status"] = "not supported"
                else:
                    fake = [embed(v.array) if harmonizer is None else
                            embed(harmonize_volume(subvolume(v), harmonizer, src, trg).array) for v in scans[src]]
                    values = distribution_columns(fake, real[trg], seed=seed)
                row[f"fid_{tag}"], row[f"kid_{tag}"] = values["fid_ct"], values["kid_ct"]
            row["fid"] = 0.5 * (row["fid_ab"] + row["fid_ba"])
            row["kid"] = 0.5 * (row["kid_ab"] + row["kid_ba"])
            rows.append(row)
    return rows


def _fmt(value: Any, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _markdown(doc: Mapping[str, Any]) -> str:
    pairs = list(dict.fromkeys(r["pair"] for r in doc["rows"]))
    methods = list(dict.fromkeys(r["method"] for r in doc["rows"]))
    by = {(r["method"], r["pair"]): r for r in doc["rows"]}
    lines = ["# FID / KID in the CT feature space, mean of both directions (paper 003 Table I form)", "",
             f"Command: `{doc['command']}`", "",
             f"Split `{doc['split']}` of `{doc['datalist']}`; {doc['slices']} evenly spaced slices per scan; feature "
             f"network {doc['feature_network']}"
             + (". Not comparable with Inception FID." if doc["feature_network"].startswith("CT") else "."), "",
             "## FID (lower is better)", "", "| method | " + " | ".join(pairs) + " | mean |",
             "| --- | " + " | ".join("---" for _ in pairs) + " | --- |"]
    for m in methods:
        vals = [by[m, p]["fid"] for p in pairs]
        finite = [v for v in vals if math.isfinite(v)]
        lines.append(f"| {m} | " + " | ".join(_fmt(v) for v in vals) + f" | {_fmt(np.mean(finite) if finite else math.nan)} |")
    lines += ["", "## KID ×100 (lower is better)", "", "| method | " + " | ".join(pairs) + " |",
              "| --- | " + " | ".join("---" for _ in pairs) + " |"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_fmt(100 * by[m, p]["kid"], 3) for p in pairs) + " |")
    lines += ["", "## Per direction", "", "| method | pair | FID a→b | FID b→a | KID a→b | KID b→a | status |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["rows"]:
        lines.append(f"| {r['method']} | {r['pair']} | {_fmt(r['fid_ab'])} | {_fmt(r['fid_ba'])} | "
                     f"{_fmt(r['kid_ab'], 4)} | {_fmt(r['kid_ba'], 4)} | {r['status']} |")
    return "\n".join(lines) + "\n"


def run_two_way_fid(
    bundles: Sequence[str] | str,
    datalist: str | os.PathLike,
    out: str | os.PathLike,
    pairs: str | Sequence[Any] | None = None,
    split: str | None = "test",
    baseline: str | None = None,
    slices: int = DISTRIBUTION_SLICES,
    device: str | None = None,
    batch_size: int | None = None,
    trust_bundle: bool = False,
    spacing_policy: str = "resample",
    seed: int = 0,
    overwrite: bool = False,
    command: str | None = None,
    inception: str | None = None,
) -> dict[str, Any]:
    """:func:`two_way_rows` for "none", the baseline (:func:`~ctharmonize.evaluation.benchmark.plan_methods`) and
    ``bundles`` on ``split`` of ``datalist``; writes ``two_way_fid.csv``, ``.json`` and ``.md`` into the folder
    ``out`` atomically (refused if it exists unless ``overwrite``). ``inception``: a user's Inception network file
    (standard FID, :class:`SliceEmbedder`); default the CT feature network. Returns the JSON document."""
    from ctharmonize.cli import comma_list
    from ctharmonize.data import datalist_entries, entry_paths
    from ctharmonize.evaluation.run import write_csv, write_json
    from ctharmonize.inference.bundle_harmonizer import load_bundle_harmonizer
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.io import read_volume
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output

    bundles = comma_list(bundles)
    pair_list = parse_pairs(pairs)
    check_spacing_policy(spacing_policy)
    if int(slices) < 1:
        raise ConfigError(None, f"--slices must be >= 1, got {slices}")
    methods = plan_methods(bundles, baseline, trust_bundle)
    entries, source = datalist_entries(datalist, split)
    kernels = {k for p in pair_list for k in p}
    entries = [e for e in entries if e.get("kernel") in kernels]
    check_output(out, [datalist, *entry_paths(entries), *(m.bundle for m in methods if m.bundle is not None)],
                 overwrite)
    if not entries:
        raise DatalistError(source, f"no entries of kernels {sorted(kernels)} in split {split!r}")
    scans: dict[str, list[Any]] = {}
    for e in entries:
        scans.setdefault(e["kernel"], []).append(read_volume(e["image"]))
    harmonizers = [(m.name, None if m.bundle is None else
                    load_bundle_harmonizer(m.bundle, device=device, batch_size=batch_size, trust=trust_bundle,
                                           spacing_policy=spacing_policy)) for m in methods]
    embed = SliceEmbedder(int(slices), device=device, network=inception)
    rows = two_way_rows(harmonizers, scans, pair_list, embed, seed=seed)
    doc = {
        "command": command or f"ctharmonize two-way-fid --bundles {','.join(bundles)} --datalist {datalist} "
                              f"--out {out}" + ("" if pairs is None else f" --pairs {','.join(':'.join(p) for p in pair_list)}"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "datalist": os.fspath(datalist), "split": split, "slices": int(slices), "seed": seed,
        "feature_network": "CTKernelFeatures (shipped weights, 128-d)" if inception is None else
                           f"Inception-style network {os.fspath(inception)}",
        "methods": [{"name": m.name, "role": m.role, "bundle": m.bundle} for m in methods],
        "rows": rows,
    }
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_csv(rows, tmp / "two_way_fid.csv")
        write_json(doc, tmp / "two_way_fid.json")
        (tmp / "two_way_fid.md").write_text(_markdown(doc), encoding="utf-8")
    return doc
