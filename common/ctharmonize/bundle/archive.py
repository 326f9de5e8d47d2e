"""Model-zoo bundle zips: written reproducibly, and checked entry by entry before anything is extracted.

A model-zoo release is ``<name>_v<version>.zip`` holding one folder ``<name>/`` (``configs/``, ``docs/``,
``LICENSE``, ``large_files.yml``). A downloaded zip is untrusted input: an entry named ``../x`` or
``/etc/x`` ("zip slip"), a symbolic link, a device or a duplicate name is refused before a single file is
written, and only then is it extracted with MONAI's ``extractall`` (which checks paths again).
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

from ctharmonize.errors import ConfigError

__all__ = ["MAX_UNPACKED_BYTES", "check_bundle_zip", "extract_bundle_zip", "write_bundle_zip"]

#: a bundle zip holds configs and docs (weights come from large_files.yml): refuse anything bigger unpacked
MAX_UNPACKED_BYTES = 1 << 30
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same bundle gives the same zip bytes
_DRIVE = re.compile(r"^[A-Za-z]:")


def write_bundle_zip(files: Mapping[str, Path | bytes], zip_path: str | os.PathLike, base: str) -> None:
    """Write ``{relative POSIX name: source file or bytes}`` as ``base/<name>`` entries of ``zip_path``
    (sorted, deflated, fixed timestamps, mode 0644), so that packaging the same bundle twice gives the same bytes."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{base}/{name}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            content = files[name]
            zf.writestr(info, content if isinstance(content, bytes) else Path(content).read_bytes())


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    mode = info.external_attr >> 16
    if "\\" in name:
        return "has a backslash in its name"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "leads out of the bundle folder ('..')"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a plain file or folder"
    return None


def check_bundle_zip(zip_path: str | os.PathLike, where: str) -> str:
    """Check every entry of a bundle zip and return its one top-level folder name.

    Args:
        zip_path: the downloaded zip.
        where: what to name in errors (the URL).

    Raises:
        ConfigError: one line naming ``where`` and the offending entry: not a zip, an unsafe entry (absolute,
            ``..``, symlink, special file, backslash), a duplicate name, more than one top-level folder, or more
            than :data:`MAX_UNPACKED_BYTES` unpacked.
    """
    if not zipfile.is_zipfile(zip_path):
        raise ConfigError(where, "not a zip archive")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ConfigError(where, f"cannot read the zip archive ({err})") from err
    seen: set[str] = set()
    bases: set[str] = set()
    total = 0
    for info in infos:
        problem = _entry_problem(info)
        if problem is None and info.filename.rstrip("/") in seen:
            problem = "appears twice"
        if problem:
            raise ConfigError(where, f"unsafe zip entry {info.filename!r}: it {problem}; nothing was extracted")
        seen.add(info.filename.rstrip("/"))
        parts = [p for p in info.filename.split("/") if p not in ("", ".")]
        if parts:
            bases.add(parts[0])
        if len(parts) == 1 and not info.is_dir():
            raise ConfigError(where, f"zip entry {info.filename!r} lies outside the bundle folder (a model-zoo zip "
                                     "holds one folder <name>/)")
        total += info.file_size
    if len(bases) != 1:
        raise ConfigError(where, f"expected one top-level bundle folder in the zip, found {len(bases)}"
                                 f"{': ' + ', '.join(sorted(bases)[:5]) if bases else ''}")
    if total > MAX_UNPACKED_BYTES:
        raise ConfigError(where, f"the zip unpacks to {total} bytes, more than a bundle's configs and docs "
                                 f"({MAX_UNPACKED_BYTES}); weights belong in large_files.yml")
    return bases.pop()


def extract_bundle_zip(zip_path: str | os.PathLike, where: str, dest: str | os.PathLike) -> Path:
    """:func:`check_bundle_zip`, then extract into the empty folder ``dest`` with MONAI's ``extractall``;
    returns ``dest/<bundle folder>``. One-line :class:`ConfigError` naming ``where``."""
    from monai.apps.utils import extractall

    from ctharmonize.bundle.monai_logs import quiet_monai

    base = check_bundle_zip(zip_path, where)
    try:
        with quiet_monai():
            extractall(filepath=os.fspath(zip_path), output_dir=os.fspath(dest), file_type="zip", has_base=False)
    except (ValueError, zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as err:
        raise ConfigError(where, f"cannot extract the zip archive ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0] if str(err) else ''})") from err
    return Path(dest) / base
