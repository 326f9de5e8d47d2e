"""Cohort-scale harmonization (NLST: tens of thousands of scans): resumable, sharded over ranks, with a manifest.

* **Sharded.** The datalist's jobs (:func:`~ctharmonize.inference.harmonization_jobs.plan_harmonization`, the
  same as :func:`~ctharmonize.inference.harmonize_datalist`'s) are dealt round-robin: rank ``r`` of ``W`` takes
  jobs ``r, r + W, ...``. Ranks come from ``torchrun`` (a process group, see
  :mod:`ctharmonize.engines.distributed`) or, without one, from ``RANK`` / ``WORLD_SIZE`` (e.g. an array job).
* **Resumable.** Each output appears atomically with its output record, then its manifest row is appended to
  the rank's shard (:mod:`ctharmonize.inference.cohort_manifest`). A scan is done when its output is an unchanged
  ctharmonize output *and* a row names it with the same input, bundle name, version and target. A rerun skips
  done scans, redoes an output whose row is missing (killed between the two), removes temporaries a killed
  write left, and refuses (unless ``overwrite``) an output made from another input, bundle or target.
* **Manifest.** Under torchrun, rank 0 waits for all ranks and writes ``manifest.csv`` (datalist order); a
  process without a process group writes it when it is the only rank (``WORLD_SIZE`` 1) and every scan is done.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ctharmonize.domains.reference import DEFAULT_REFERENCE_KERNEL
from ctharmonize.errors import ConfigError, CTHarmonizeError, DatalistError, OutputExistsError
from ctharmonize.inference.cohort_manifest import ManifestShard, read_manifest_shards, write_manifest
from ctharmonize.inference.harmonization_jobs import (
    HarmonizationJob,
    plan_harmonization,
    run_harmonization_job,
)
from ctharmonize.inference.harmonizer import Harmonizer

__all__ = ["CohortResult", "cohort_rank", "harmonize_cohort"]

MANIFEST_NAME = "manifest.csv"
_BARRIER_TIMEOUT = timedelta(days=7)  # ranks may finish hours apart; the default 30 min would abort the wait


@dataclass(frozen=True)
class CohortResult:
    """What one process of :func:`harmonize_cohort` did."""

    out_dir: Path
    rank: int
    world_size: int
    jobs: int  # scans of the cohort to harmonize, all ranks
    harmonized: int  # by this process, this run
    already_done: int  # of this rank's share, by earlier runs
    skipped: int  # entries already in their target kernel
    shard: Path
    manifest: Path | None  # written by this process


def cohort_rank() -> tuple[int, int]:
    """(rank, world size): the process group's, else ``RANK`` / ``WORLD_SIZE`` (default 0, 1)."""
    from ctharmonize.engines.distributed import get_rank, get_world_size, is_distributed

    if is_distributed():
        return get_rank(), get_world_size()
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(None, "RANK and WORLD_SIZE must be integers") from None
    if not 0 <= rank < world:
        raise ConfigError(None, f"RANK {rank} must lie in 0..WORLD_SIZE-1 (WORLD_SIZE {world})")
    return rank, world


def _matches(row: Mapping[str, str], job: HarmonizationJob, bundle: tuple[str, str]) -> bool:
    return (row["output"] == job.out.name and row["input"] == job.image and row["target_kernel"] == job.target
            and (row["bundle"], row["bundle_version"]) == bundle)


def _status(job: HarmonizationJob, rows: Sequence[Mapping[str, str]], bundle: tuple[str, str],
            overwrite: bool) -> str:
    """"new", "done" or "redo" (replace our own unfinished or, with ``overwrite``, outdated output)."""
    from ctharmonize.io.atomic import check_writable, is_tool_output, output_record_path

    if not os.path.lexists(job.out):
        return "new"
    ours, _ = is_tool_output(job.out)
    if not ours:
        if not os.path.lexists(output_record_path(job.out)):
            raise OutputExistsError(job.out, "exists without its output record (not written by ctharmonize, or a "
                                             "run killed while renaming it); remove it and run again")
        check_writable(job.out, overwrite=True)  # raises, naming why
    if any(_matches(r, job, bundle) for r in rows):
        return "done"
    if rows and not overwrite:
        raise OutputExistsError(job.out, "was harmonized from another input, bundle version or target (see "
                                         "manifest_shards/); pass --overwrite to redo it")
    return "redo"  # no row: the run that wrote it was killed before recording it


def _remove_stale_temporaries(out_dir: Path, jobs: Sequence[HarmonizationJob]) -> None:
    """Temporaries a killed write left (``.<output>.<random>.tmp*``, see :func:`ctharmonize.io.atomic_path`)
    for this rank's outputs; other ranks' are theirs to remove."""
    names = {job.out.name for job in jobs}
    for entry in os.scandir(out_dir):
        name = entry.name
        cut = name.find(".nii.gz.")
        if name.startswith(".") and cut > 0 and ".tmp" in name[cut:] and name[1:cut + 7] in names:
            os.unlink(entry.path)


def _barrier_group() -> Any:
    """A gloo group with a long timeout for the final wait (None without a process group)."""
    from ctharmonize.engines.distributed import is_distributed

    if not is_distributed():
        return None
    import torch.distributed as dist

    return dist.new_group(backend="gloo", timeout=_BARRIER_TIMEOUT)


def harmonize_cohort(
    harmonizer: Harmonizer,
    datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    target: str | Mapping[str, str] = DEFAULT_REFERENCE_KERNEL,
    split: str | None = None,
    *,
    bundle_name: str,
    bundle_version: str = "",
    model_name: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> CohortResult:
    """Harmonize this rank's share of a cohort, skipping what earlier runs finished (see the module docstring).

    Args:
        harmonizer: a bundle's ``harmonizer``.
        datalist: datalist JSON path or loaded entries.
        out_dir: the cohort's output folder (created; it must not hold any input).
        target: target kernel domain, or a mapping source kernel -> target (as for ``harmonize_datalist``).
        split: keep only this split (None or "all": every entry).
        bundle_name, bundle_version: recorded in the manifest; a scan done with another is not done.
        model_name: recorded in each output header.
        overwrite: redo outputs made from another input, bundle version or target (never replaces files
            ctharmonize did not write).
        progress: a tqdm bar per rank.

    Raises:
        one-line errors before any work: a bad datalist, an unknown target, an output that may not be replaced;
        the first bad input during the run (finished scans stay done).
    """
    from ctharmonize.data import datalist_entries
    from ctharmonize.io.atomic import check_writable, is_tool_output
    from ctharmonize.io.file_digest import sha256_of
    from ctharmonize.io.output_check import check_not_overlapping, check_parent_writable

    entries, source = datalist_entries(datalist, split)
    if not entries:
        raise DatalistError(source, f"no entries in split {split!r} to harmonize")
    rank, world = cohort_rank()
    group = _barrier_group()
    out_dir = Path(out_dir)
    check_not_overlapping(out_dir, [source, *(e["image"] for e in entries)])
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ConfigError(out_dir, "the cohort output must be a folder")
    check_parent_writable(out_dir / "x")
    jobs = plan_harmonization(entries, target, out_dir, harmonizer.domains)
    bundle = (str(bundle_name), str(bundle_version))
    by_output: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in read_manifest_shards(out_dir):
        by_output[row["output"]].append(row)
    status = [_status(job, by_output.get(job.out.name, []), bundle, overwrite) for job in jobs]
    manifest = out_dir / MANIFEST_NAME
    if os.path.lexists(manifest):
        check_writable(manifest, overwrite=True)  # ours and unchanged, else refused now rather than at the end
    mine = list(range(rank, len(jobs), world))
    todo = [k for k in mine if status[k] != "done"]
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out_dir, [jobs[k] for k in mine])
    shard = ManifestShard(out_dir, rank, world)
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), unit="scan", disable=not progress,
               desc=f"harmonize rank {rank}/{world}" if world > 1 else "harmonize",
               position=rank if world > 1 else None)
    with bar:
        for k in todo:
            job = jobs[k]
            started = time.perf_counter()
            digest = sha256_of(job.image)
            kernel = run_harmonization_job(harmonizer, job, model_name=model_name, overwrite=status[k] == "redo")
            shard.append({"index": job.index, "subject": job.entry.get("subject", ""), "input": job.image,
                          "input_sha256": digest, "output": job.out.name, "bundle": bundle[0],
                          "bundle_version": bundle[1], "source_kernel": kernel, "target_kernel": job.target,
                          "seconds": f"{time.perf_counter() - started:.3f}"})
            bar.update()
    if group is not None:
        import torch.distributed as dist

        try:
            dist.barrier(group=group)
        except Exception as err:  # a rank that failed closes its connections: one line here, its error there
            raise CTHarmonizeError(None, f"rank {rank}: another rank stopped before finishing its share (see its "
                                         "error); run the same command again to resume") from err
    written = None
    if rank == 0 and (group is not None or world == 1):
        rows = read_manifest_shards(out_dir)
        merged = [next((r for r in reversed(rows) if _matches(r, job, bundle)), None) for job in jobs]
        if all(r is not None for r in merged) and all(is_tool_output(job.out)[0] for job in jobs):
            written = write_manifest(merged, manifest)
    return CohortResult(out_dir, rank, world, len(jobs), len(todo), len(mine) - len(todo), len(entries) - len(jobs),
                        shard.path, written)
