"""Harmonize every scan of a datalist split to one target kernel (input of the cohort evaluation)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ctharmonize.domains.reference import DEFAULT_REFERENCE_KERNEL
from ctharmonize.errors import DatalistError
from ctharmonize.inference.harmonize import harmonize_volume
from ctharmonize.inference.harmonizer import Harmonizer
from ctharmonize.inference.source_domain import check_model_domain, resolve_source_domain

__all__ = ["harmonize_datalist"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def harmonize_datalist(
    harmonizer: Harmonizer,
    datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    target: str | Mapping[str, str] = DEFAULT_REFERENCE_KERNEL,
    split: str | None = "test",
    *,
    model_name: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Harmonize the ``split`` entries of ``datalist`` from their kernel to ``target``.

    Each harmonized entry is written to ``out_dir/<index>_<subject>_<kernel>_to_<target>.nii.gz``
    (float32 HU). With a single ``target`` every entry of another kernel is harmonized to it (paper
    000 Table 2: all kernels to the reference B30f); with a mapping ``{source kernel: target}`` only
    the listed kernels are (Table 1: ``{"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard"}``).
    Other entries are returned unchanged (references).

    Args:
        harmonizer: a bundle's ``harmonizer`` (:class:`~ctharmonize.inference.Harmonizer`).
        datalist: datalist JSON path or already-loaded entries (absolute paths).
        out_dir: folder for the harmonized volumes (created).
        target: target kernel domain, or a mapping source kernel -> target kernel domain.
        split: keep only entries of this split (None or "all": every entry).
        model_name: recorded in each output header.
        overwrite: replace existing harmonized files.
        progress: tqdm bar over scans.

    Returns:
        the entries, each with ``kernel`` set and, when harmonized, ``harmonized`` (path) and ``target``
        added: the form :func:`ctharmonize.evaluation.run_evaluation` expects.
    """
    from ctharmonize.data import datalist_entries
    from ctharmonize.io import check_writable, read_volume, write_volume

    entries, source = datalist_entries(datalist, split)
    if not entries:
        raise DatalistError(source, f"no entries in split {split!r} to harmonize")
    targets = dict(target) if isinstance(target, Mapping) else None
    for name in [target] if targets is None else targets.values():
        check_model_domain(name, harmonizer.domains, "target")
    out_dir = Path(out_dir)
    jobs = []
    for i, entry in enumerate(entries):
        goal = target if targets is None else targets.get(str(entry.get("kernel")))
        if goal is None or entry.get("kernel") == goal:
            continue
        subject = _UNSAFE.sub("_", str(entry.get("subject") or Path(str(entry["image"])).name))
        name = f"{i:04d}_{subject}_{entry.get('kernel') or 'unknown'}_to_{goal}.nii.gz"
        jobs.append((entry, goal, out_dir / name))
        check_writable(out_dir / name, overwrite)
    for entry, goal, out in tqdm(jobs, desc="harmonize", unit="scan", disable=not progress):
        volume = read_volume(entry["image"])
        kernel = resolve_source_domain(volume, entry.get("kernel"), harmonizer.domains, path=entry["image"])
        result = harmonize_volume(volume, harmonizer, kernel, goal, model_name=model_name)
        write_volume(result, out, overwrite=overwrite)
        entry.update(kernel=kernel, harmonized=os.fspath(out), target=goal)
    return entries
