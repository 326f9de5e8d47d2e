"""Atomic output: write to a temporary sibling, then rename into place; overwrite only our own outputs.

A reader never sees a half-written file or DICOM folder. An output written with ``record=True``
(every user-facing output: volumes, label maps, reports, datasets, weights) gets an *output record*,
a hidden sibling ``.<name>.ctharmonize.json`` listing what was written (file size, or every file of a
folder with its size). ``overwrite=True`` replaces an existing path only when its record says
ctharmonize wrote it and it has not changed since; anything else (a folder the user made, an input,
a file edited afterwards) is refused, whatever ``overwrite`` says.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ctharmonize.errors import OutputExistsError

__all__ = ["atomic_path", "check_writable", "is_tool_output", "output_record_path"]

_RECORD_SUFFIX = ".ctharmonize.json"


def output_record_path(path: str | os.PathLike) -> Path:
    """The hidden record ``.<name>.ctharmonize.json`` next to an output ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}{_RECORD_SUFFIX}")


def _listing(path: Path) -> dict:
    """What is at ``path`` now: ``{"kind": "file", "size": n}`` or ``{"kind": "folder", "files": {rel: size}}``."""
    if path.is_symlink():
        return {"kind": "symlink", "target": os.readlink(path)}
    if path.is_dir():
        files = {}
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names + [d for d in dirs if Path(root, d).is_symlink()]):
                p = Path(root, name)
                files[p.relative_to(path).as_posix()] = -1 if p.is_symlink() else p.stat().st_size
        return {"kind": "folder", "files": files}
    return {"kind": "file", "size": path.stat().st_size}


def is_tool_output(path: str | os.PathLike) -> tuple[bool, str]:
    """(True, "") when ``path`` was written by ctharmonize and is unchanged since; else (False, why)."""
    path = Path(path)
    record = output_record_path(path)
    if not record.is_file():
        return False, "it was not written by ctharmonize (no output record)"
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False, f"its output record {record.name} is unreadable"
    if not isinstance(recorded, dict) or recorded.get("written_by") != "ctharmonize":
        return False, f"its output record {record.name} is not ctharmonize's"
    if {k: recorded.get(k) for k in _listing(path)} != _listing(path):
        return False, "it has changed since ctharmonize wrote it"
    return True, ""


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise :class:`OutputExistsError` unless ``path`` is free, or ``overwrite`` is set and ``path`` is an
    unchanged earlier output of ctharmonize (see :func:`is_tool_output`)."""
    path = Path(path)
    if os.path.lexists(path):
        if not overwrite:
            raise OutputExistsError(path, "output already exists; pass overwrite=True (--overwrite) to replace it")
        ours, why = is_tool_output(path)
        if not ours:
            raise OutputExistsError(path, f"output exists and --overwrite only replaces earlier ctharmonize "
                                          f"outputs: {why}; remove it yourself or choose another output")
    return path


def _write_record(path: Path) -> None:
    from ctharmonize import __version__

    record = {"written_by": "ctharmonize", "version": __version__, **_listing(path)}
    target = output_record_path(path)
    fd, name = tempfile.mkstemp(prefix=f"{target.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1)
    os.chmod(name, 0o666 & ~_umask())
    os.replace(name, target)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _suffix(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".tar.gz"):
        if name.endswith(ext):
            return ext
    return path.suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False, directory: bool = False,
                record: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    With ``directory=True`` the yielded path is an empty folder (e.g. for a DICOM series).
    The temporary keeps the final suffix (``.nii.gz`` …) so format-sniffing writers work.
    On error the temporary is removed and ``path`` is untouched.

    ``record=True`` (user-facing outputs): an existing ``path`` is replaced only if it is an unchanged
    earlier ctharmonize output, and an output record is written next to the result. ``record=False``
    (files the tool manages itself: checkpoints, caches, files inside a folder being written) keeps
    the plain rule: an existing path is replaced when ``overwrite`` is set.
    """
    final = check_writable(path, overwrite) if record else Path(path)
    if not record and final.exists() and not overwrite:
        raise OutputExistsError(final, "output already exists; pass overwrite=True to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{_suffix(final)}", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    try:
        yield tmp
        if os.path.lexists(final):
            if not overwrite:  # appeared meanwhile
                raise OutputExistsError(final, "output appeared while writing; not replaced")
            if record:
                check_writable(final, overwrite)  # still ours
            if final.is_dir() and not final.is_symlink():
                # a fresh empty folder of our own: rename(2) may replace an empty directory
                backup = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
                os.replace(final, backup)
                os.replace(tmp, final)
                shutil.rmtree(backup, ignore_errors=True)
                if record:
                    _write_record(final)
                return
        os.replace(tmp, final)
        if record:
            _write_record(final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
