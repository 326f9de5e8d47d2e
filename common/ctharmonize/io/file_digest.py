"""SHA-256 of an input as it is on disk: a file's bytes, or a folder's relative names and bytes (a DICOM series)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["sha256_of"]

_CHUNK = 1 << 20


def _update(h, path: Path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, or of a folder (every file below it, sorted by relative POSIX name, each as
    ``name NUL bytes NUL``); symlinks are followed, as a reader would."""
    path = Path(path)
    h = hashlib.sha256()
    if not path.is_dir():
        _update(h, path)
        return h.hexdigest()
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            p = Path(root, name)
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
            _update(h, p)
            h.update(b"\0")
    return h.hexdigest()
