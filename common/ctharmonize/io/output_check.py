"""Check an output path before any work: never the input, never inside or around it, writable, ours to replace.

:func:`check_output` is called by every command (and the Python entry points behind them) before
an input is read, so that a bad output path costs nothing and an input can never be overwritten,
deleted or polluted, whatever ``overwrite`` says.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ctharmonize.errors import ConfigError, OutputExistsError
from ctharmonize.io.atomic import check_writable

__all__ = ["check_output", "check_not_overlapping", "check_parent_writable"]


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_overlapping(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse an output that is, contains, or lies inside one of ``inputs`` (symlinks resolved)."""
    target = _real(out)
    for item in inputs:
        if item is None:
            continue
        source = _real(item)
        if target == source:
            raise OutputExistsError(out, f"output is the input {os.fspath(item)}; choose another output path")
        if _within(source, target):
            raise OutputExistsError(out, f"output would contain the input {os.fspath(item)}; "
                                         "choose an output outside it")
        if source.is_dir() and _within(target, source):
            raise OutputExistsError(out, f"output lies inside the input folder {os.fspath(item)}; "
                                         "choose an output outside it")


def check_parent_writable(out: str | os.PathLike) -> None:
    """The nearest existing ancestor of ``out`` must be a folder we can create entries in (tried for real,
    so read-only mounts and immutable folders are caught even as root)."""
    path = Path(os.path.abspath(os.fspath(out)))
    parent = path.parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(out, f"cannot create the output: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ctharmonize-write-test.", dir=parent)
    except OSError as err:
        raise ConfigError(out, f"cannot write into {parent} ({err.strerror or type(err).__name__})") from err
    os.close(fd)
    os.unlink(probe)


def check_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                 overwrite: bool = False) -> Path:
    """All checks on an output path, in order: not overlapping an input, free or an unchanged earlier
    ctharmonize output when ``overwrite``, parent writable. Raises one-line errors naming ``out``."""
    if os.fspath(out) == "":
        raise ConfigError(None, "the output path is empty")
    check_not_overlapping(out, inputs)
    path = check_writable(out, overwrite)
    check_parent_writable(out)
    return path
