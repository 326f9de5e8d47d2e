"""The per-scan jobs of harmonizing a datalist: which entries, to which target, into which file; and one job run.

Shared by :func:`~ctharmonize.inference.harmonize_datalist` (the evaluation's input) and
:func:`~ctharmonize.inference.harmonize_cohort` (resumable, sharded), so both name and compute outputs alike.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctharmonize.inference.harmonize import harmonize_volume
from ctharmonize.inference.harmonizer import Harmonizer
from ctharmonize.inference.source_domain import check_model_domain, resolve_source_domain

__all__ = ["HarmonizationJob", "plan_harmonization", "run_harmonization_job"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class HarmonizationJob:
    """Harmonize ``entry["image"]`` to ``target`` into ``out``; ``index`` is the entry's place in the datalist."""

    index: int
    entry: dict[str, Any]
    target: str
    out: Path

    @property
    def image(self) -> str:
        """The input scan (as the datalist resolved it)."""
        return os.fspath(self.entry["image"])


def plan_harmonization(entries: Sequence[dict[str, Any]], target: str | Mapping[str, str],
                       out_dir: str | os.PathLike, domains: Iterable[str] | None = None) -> list[HarmonizationJob]:
    """The jobs for ``entries``: with one ``target`` every entry of another kernel, with a mapping
    ``{source kernel: target}`` only the listed kernels; output ``out_dir/<index>_<subject>_<kernel>_to_<target>.nii.gz``.

    Raises:
        UnknownDomainError: a target the model does not know (``domains``).
    """
    targets = dict(target) if isinstance(target, Mapping) else None
    if domains is not None:
        domains = tuple(domains)
        for name in [target] if targets is None else targets.values():
            check_model_domain(name, domains, "target")
    out_dir = Path(out_dir)
    jobs = []
    for i, entry in enumerate(entries):
        goal = target if targets is None else targets.get(str(entry.get("kernel")))
        if goal is None or entry.get("kernel") == goal:
            continue
        subject = _UNSAFE.sub("_", str(entry.get("subject") or Path(str(entry["image"])).name))
        name = f"{i:04d}_{subject}_{entry.get('kernel') or 'unknown'}_to_{goal}.nii.gz"
        jobs.append(HarmonizationJob(i, entry, str(goal), out_dir / name))
    return jobs


def run_harmonization_job(harmonizer: Harmonizer, job: HarmonizationJob, *, model_name: str | None = None,
                          overwrite: bool = False) -> str:
    """Read ``job``'s scan, harmonize it and write ``job.out`` atomically (float32 HU NIfTI, with its output
    record); returns the source kernel (the entry's, else resolved from the header)."""
    from ctharmonize.io import read_volume, write_volume

    volume = read_volume(job.image)
    kernel = resolve_source_domain(volume, job.entry.get("kernel"), harmonizer.domains, path=job.image)
    result = harmonize_volume(volume, harmonizer, kernel, job.target, model_name=model_name, path=job.image)
    write_volume(result, job.out, overwrite=overwrite)
    return kernel
