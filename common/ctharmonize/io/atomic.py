"""Atomic output: write to a temporary sibling, then rename into place.

A reader never sees a half-written file or DICOM folder, and an existing output is only
replaced when ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ctharmonize.errors import OutputExistsError

__all__ = ["atomic_path", "check_writable"]


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise :class:`OutputExistsError` if ``path`` exists and ``overwrite`` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path, "output already exists; pass overwrite=True to replace it")
    return path


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
def atomic_path(path: str | os.PathLike, overwrite: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    With ``directory=True`` the yielded path is an empty folder (e.g. for a DICOM series).
    The temporary keeps the final suffix (``.nii.gz`` …) so format-sniffing writers work.
    On error the temporary is removed and ``path`` is untouched.
    """
    final = check_writable(path, overwrite)
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
        if final.exists():
            if not overwrite:  # appeared meanwhile
                raise OutputExistsError(final, "output appeared while writing; not replaced")
            if final.is_dir() and not final.is_symlink():
                backup = final.with_name(f".{final.name}.old")
                if backup.exists():
                    shutil.rmtree(backup)
                os.replace(final, backup)
                os.replace(tmp, final)
                shutil.rmtree(backup, ignore_errors=True)
                return
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
