"""Which images ``ctharmonize radiomics`` compares: same-subject scans of two kernels, and harmonized images.

A pair spec ``SRC:REF`` (e.g. ``ge_bone:ge_standard``) pairs, for every subject of the datalist with a
scan of kernel SRC and one of kernel REF, the two scans (pixel-aligned reconstructions of one acquisition,
or registered scans of one subject on two scanners). Entries are matched by ``subject`` and ``kernel``;
entries with ``source_kernel`` (harmonized images listed as their own entries) are not originals.

Harmonized images (``--harmonized``) of SRC to REF, by subject, come from one of:

* a datalist JSON (it may be the datalist itself): an entry with ``source_kernel`` SRC and ``kernel`` REF
  (its ``image`` is the harmonized image), or an entry with ``kernel`` SRC, ``harmonized`` and
  ``target`` REF (docs/evaluation.md's two forms);
* the output folder of ``ctharmonize harmonize-cohort``, or its ``manifest.csv`` (columns ``subject``,
  ``output``, ``source_kernel``, ``target_kernel``; ``output`` relative to the manifest's folder).

Several methods side by side (the paper's rows CycleGAN, CVS-CT¹, …): ``NAME=PATH[,NAME=PATH...]``, each
PATH one of the forms above (:func:`parse_harmonized`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctharmonize.errors import ConfigError, DatalistError

__all__ = ["DEFAULT_METHOD", "PairScans", "load_harmonized", "pair_name", "parse_harmonized", "parse_pairs",
           "plan_pairs"]

#: the method name of a single unnamed ``--harmonized`` source
DEFAULT_METHOD = "harmonized"
_RESERVED = ("input", "source", "reference")

_MANIFEST = "manifest.csv"
_MANIFEST_COLUMNS = ("subject", "output", "source_kernel", "target_kernel")


@dataclass(frozen=True)
class PairScans:
    """One subject's images of a pair: source-kernel and reference-kernel scans, the harmonized source of
    each method (``(method, image)`` in the methods' order; empty without ``--harmonized``), and the label
    map the soft-tissue ROI comes from (or None: HU threshold ROI)."""

    subject: str
    source: str
    reference: str
    harmonized: tuple[tuple[str, str], ...] = ()
    labels: str | None = None


def pair_name(pair: tuple[str, str]) -> str:
    """``"SRC->REF"``."""
    return f"{pair[0]}->{pair[1]}"


def parse_pairs(value: Any) -> list[tuple[str, str]]:
    """``"SRC:REF[,SRC:REF...]"`` (or a list of such strings or of [SRC, REF]) -> [(SRC, REF), ...]."""
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value or [])
    pairs: list[tuple[str, str]] = []
    for item in items:
        parts = [str(p).strip() for p in (item.split(":") if isinstance(item, str) else item)]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(None, f"--pairs expects SRC:REF[,SRC:REF...] kernel pairs (e.g. ge_bone:ge_standard), "
                                    f"got {item!r}")
        if parts[0] == parts[1]:
            raise ConfigError(None, f"--pairs: {item!r} pairs a kernel with itself")
        if tuple(parts) not in pairs:
            pairs.append((parts[0], parts[1]))
    if not pairs:
        raise ConfigError(None, f"--pairs names no kernel pair: {value!r}")
    return pairs


def parse_harmonized(value: Any) -> dict[str, str]:
    """``--harmonized``: one source (``PATH`` -> {"harmonized": PATH}) or ``NAME=PATH[,NAME=PATH...]`` (or a
    mapping) -> {method name: source}, in the given order. Names are unique and not input/source/reference."""
    if isinstance(value, Mapping):
        items = [(str(k).strip(), os.fspath(v)) for k, v in value.items()]
    else:
        text = os.fspath(value)
        if "=" not in text:
            return {DEFAULT_METHOD: text}
        items = [tuple(part.strip() for part in item.split("=", 1)) for item in text.split(",") if item.strip()]
    methods: dict[str, str] = {}
    for item in items:
        if len(item) != 2 or not all(item):
            raise ConfigError(None, f"--harmonized expects PATH or NAME=PATH[,NAME=PATH...], got {value!r}")
        name, path = item
        if name in methods or name.lower() in _RESERVED:
            raise ConfigError(None, f"--harmonized: method name {name!r} is "
                                    f"{'given twice' if name in methods else 'reserved'}")
        methods[name] = path
    if not methods:
        raise ConfigError(None, f"--harmonized names no source: {value!r}")
    return methods


def _originals(entries: Sequence[Mapping[str, Any]], source: Path | None) -> dict[tuple[str, str], Mapping]:
    found: dict[tuple[str, str], Mapping] = {}
    for i, e in enumerate(entries):
        if e.get("source_kernel"):
            continue
        if not e.get("kernel") or not e.get("subject"):
            missing = "kernel" if not e.get("kernel") else "subject"
            raise DatalistError(source, f"entry {i} ({e.get('image')}): {missing!r} missing; radiomics pairs scans "
                                        "by subject and kernel")
        key = (str(e["subject"]), str(e["kernel"]))
        if key in found:
            raise DatalistError(source, f"entry {i}: subject {key[0]!r} has a second {key[1]!r} scan")
        found[key] = e
    return found


def plan_pairs(entries: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[str, str]], source: Path | None = None,
               harmonized: Mapping[str, Mapping[tuple[str, str, str], str]] | None = None,
               harmonized_source: Mapping[str, str | os.PathLike] | None = None,
               roi: str = "auto") -> dict[tuple[str, str], list[PairScans]]:
    """Pair -> the subjects' :class:`PairScans` (datalist order), checked before any image is read.

    ``harmonized``: method -> {(subject, SRC, REF): harmonized image} (:func:`load_harmonized` of each
    source in ``harmonized_source``, method -> path); every subject of a pair must have one of each method. ``roi``: "auto" (label map of the reference entry, else of the source
    entry, else none), "labels" (a label map required) or "threshold" (never one).
    """
    originals = _originals(entries, source)
    kernels = sorted({k for _, k in originals})
    plan: dict[tuple[str, str], list[PairScans]] = {}
    for src, ref in pairs:
        subjects = [s for s, k in originals if k == src and (s, ref) in originals]
        if not subjects:
            raise DatalistError(source, f"no subject has both a {src!r} and a {ref!r} scan (pair {src}:{ref}); "
                                        f"kernels in the datalist: {', '.join(kernels) or 'none'}")
        scans = []
        for s in subjects:
            a, b = originals[(s, src)], originals[(s, ref)]
            labels = None if roi == "threshold" else (b.get("labels") or a.get("labels"))
            if roi == "labels" and not labels:
                raise DatalistError(source, f"subject {s!r}: no 'labels' map for the soft-tissue ROI (--roi labels)")
            images = []
            for method, found in (harmonized or {}).items():
                image = found.get((s, src, ref))
                if image is None:
                    raise DatalistError((harmonized_source or {}).get(method),
                                        f"no harmonized {src}->{ref} image of subject {s!r}")
                images.append((method, image))
            scans.append(PairScans(s, str(a["image"]), str(b["image"]), tuple(images),
                                   None if labels is None else str(labels)))
        plan[(src, ref)] = scans
    return plan


def _from_manifest(path: Path) -> dict[tuple[str, str, str], str]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in _MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DatalistError(path, f"not a harmonize-cohort manifest: column(s) {', '.join(missing)} missing")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatalistError(path, f"cannot read the manifest: {err}") from err
    found: dict[tuple[str, str, str], str] = {}
    for n, row in enumerate(rows, start=2):
        if not all(row.get(c) for c in _MANIFEST_COLUMNS):
            raise DatalistError(path, f"line {n}: empty {', '.join(c for c in _MANIFEST_COLUMNS if not row.get(c))}")
        image = path.parent / row["output"]
        if not image.exists():
            raise DatalistError(path, f"line {n}: file not found: {image}")
        found[(row["subject"], row["source_kernel"], row["target_kernel"])] = os.fspath(image)
    return found


def load_harmonized(path: str | os.PathLike) -> dict[tuple[str, str, str], str]:
    """(subject, SRC, REF) -> harmonized image path, from a datalist JSON, a harmonize-cohort folder or its
    manifest.csv (see the module docstring). One-line :class:`DatalistError` on a bad file."""
    from ctharmonize.data import load_datalist

    p = Path(path)
    if p.is_dir():
        if not (p / _MANIFEST).is_file():
            raise DatalistError(p, f"a folder of harmonized images needs the {_MANIFEST} of ctharmonize "
                                   "harmonize-cohort; give a datalist JSON otherwise")
        return _from_manifest(p / _MANIFEST)
    if p.suffix.lower() == ".csv":
        return _from_manifest(p)
    found: dict[tuple[str, str, str], str] = {}
    for i, e in enumerate(load_datalist(p, check_files=True)):
        subject = e.get("subject")
        if e.get("source_kernel") and e.get("kernel"):
            key = (str(subject), str(e["source_kernel"]), str(e["kernel"]))
            image = e["image"]
        elif e.get("harmonized") and e.get("target") and e.get("kernel"):
            key = (str(subject), str(e["kernel"]), str(e["target"]))
            image = e["harmonized"]
        else:
            continue
        if not subject:
            raise DatalistError(p, f"entry {i} ({image}): 'subject' missing; harmonized images are matched by subject")
        if key in found and found[key] != image:
            raise DatalistError(p, f"entry {i}: a second harmonized {key[1]}->{key[2]} image of subject {key[0]!r}")
        found[key] = str(image)
    if not found:
        raise DatalistError(p, "no harmonized images: expected entries with 'source_kernel' and 'kernel', or with "
                               "'harmonized' and 'target'")
    return found
