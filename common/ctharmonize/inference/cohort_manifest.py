"""The manifest of a cohort harmonization: one CSV row per harmonized scan, one shard file per rank.

Each rank appends a row to its own shard ``<out>/manifest_shards/rank<R>_of_<W>.csv`` right after the
scan's output has appeared (atomically), flushing and fsync-ing it, so that a row means "this output is
complete". A run killed mid-row leaves at most one incomplete last line: it is ignored when read and
dropped when that rank's shard is reopened. The merged ``<out>/manifest.csv`` (rows in datalist order) is
written atomically once every scan has its row.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_FIELDS", "ManifestShard", "read_manifest_rows", "read_manifest_shards", "shard_path",
           "write_manifest"]

#: columns: entry index, subject, input path and sha256, output (relative to the manifest's folder), bundle
#: name and version, source and target kernel, wall seconds for the scan (read + harmonize + write)
MANIFEST_FIELDS = ("index", "subject", "input", "input_sha256", "output", "bundle", "bundle_version",
                   "source_kernel", "target_kernel", "seconds")
SHARD_FOLDER = "manifest_shards"


def shard_path(out_dir: str | os.PathLike, rank: int, world_size: int) -> Path:
    """``<out_dir>/manifest_shards/rank<rank>_of_<world_size>.csv``."""
    return Path(out_dir) / SHARD_FOLDER / f"rank{rank}_of_{world_size}.csv"


def _complete_text(path: Path) -> str:
    """The file's text up to its last newline (a row cut by a kill has none)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return text[: text.rfind("\n") + 1]


def read_manifest_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The complete rows of a manifest or shard CSV ([] when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = csv.DictReader(io.StringIO(_complete_text(path), newline=""))
    return [row for row in rows if all(row.get(k) is not None for k in MANIFEST_FIELDS)]


def read_manifest_shards(out_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The complete rows of every shard under ``out_dir`` (any rank, any earlier world size)."""
    folder = Path(out_dir) / SHARD_FOLDER
    return [row for p in sorted(folder.glob("rank*_of_*.csv")) for row in read_manifest_rows(p)]


def _line(row: Mapping[str, Any]) -> str:
    buf = io.StringIO(newline="")
    csv.DictWriter(buf, MANIFEST_FIELDS, lineterminator="\n").writerow({k: row[k] for k in MANIFEST_FIELDS})
    return buf.getvalue()


def _header() -> str:
    return ",".join(MANIFEST_FIELDS) + "\n"


class ManifestShard:
    """This rank's shard, opened for appending (created with its header; an incomplete last line dropped)."""

    def __init__(self, out_dir: str | os.PathLike, rank: int, world_size: int) -> None:
        from ctharmonize.io.atomic import atomic_path

        self.path = shard_path(out_dir, rank, world_size)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = self.path.read_bytes().decode("utf-8", errors="replace") if self.path.is_file() else ""
        kept = text[: text.rfind("\n") + 1]
        if not kept or kept != text:
            with atomic_path(self.path, overwrite=True) as tmp:
                tmp.write_text(kept or _header(), encoding="utf-8")

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row durably (flush + fsync)."""
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(_line(row))
            f.flush()
            os.fsync(f.fileno())


def write_manifest(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write the merged manifest atomically (with its output record; an earlier unchanged one is replaced)."""
    from ctharmonize.io.atomic import atomic_path

    with atomic_path(path, overwrite=True, record=True) as tmp:
        tmp.write_text(_header() + "".join(_line(r) for r in rows), encoding="utf-8")
    return Path(path)
