"""Harmonize every scan of a datalist split to one target kernel (input of the cohort evaluation)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from tqdm import tqdm

from ctharmonize.domains.reference import DEFAULT_REFERENCE_KERNEL
from ctharmonize.errors import DatalistError
from ctharmonize.inference.harmonization_jobs import plan_harmonization, run_harmonization_job
from ctharmonize.inference.harmonizer import Harmonizer

__all__ = ["harmonize_datalist"]


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
    Other entries are returned unchanged (references). For a resumable, sharded run over a whole
    cohort with a manifest see :func:`~ctharmonize.inference.harmonize_cohort`.

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
    from ctharmonize.io import check_writable

    entries, source = datalist_entries(datalist, split)
    if not entries:
        raise DatalistError(source, f"no entries in split {split!r} to harmonize")
    jobs = plan_harmonization(entries, target, out_dir, harmonizer.domains)
    for job in jobs:
        check_writable(job.out, overwrite)
    for job in tqdm(jobs, desc="harmonize", unit="scan", disable=not progress):
        kernel = run_harmonization_job(harmonizer, job, model_name=model_name, overwrite=overwrite)
        job.entry.update(kernel=kernel, harmonized=os.fspath(job.out), target=job.target)
    return entries
