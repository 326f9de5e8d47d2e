"""``large_files.yml``: the bundle files that are downloaded, not zipped, each with its URL and sha256.

The model-zoo format (``python -m monai.bundle download_large_files`` reads it)::

    large_files:
      - path: models/model.pt
        url: https://host/release/name_v0.4.0_models_model.pt
        hash_val: 3f5a...          # sha256, 64 hex digits
        hash_type: sha256

MONAI's ``download()`` of a bundle zip checks no hash; ctharmonize's download accepts only entries with a
sha256 and a safe relative path, and a file is moved into the bundle only after its hash matched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

from ctharmonize.errors import ConfigError, WeightsError

__all__ = ["LARGE_FILES_NAMES", "LargeFile", "check_sha256", "check_url", "fetch_large_file", "find_large_files_file",
           "large_files_document", "read_large_files"]

LARGE_FILES_NAMES = ("large_files.yml", "large_files.yaml", "large_files.json")
_SCHEMES = ("http", "https", "file")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LargeFile:
    """One ``large_files`` entry: ``path`` inside the bundle (POSIX, relative), ``url``, ``sha256``."""

    path: str
    url: str
    sha256: str


def check_url(url: str, what: str = "URL") -> str:
    """``url`` if it is an http://, https:// or file:// URL; else a one-line :class:`ConfigError`."""
    scheme = urlparse(str(url)).scheme.lower()
    if scheme not in _SCHEMES or not str(url)[len(scheme) + 3:]:
        raise ConfigError(str(url), f"not a usable {what}: expected http://, https:// or file:///ABSOLUTE/PATH")
    return str(url)


def check_sha256(value: str, what: str) -> str:
    """A sha256 hex digest (lower-cased), else a one-line :class:`ConfigError` naming ``what``."""
    text = str(value).strip().lower()
    if not _SHA256.match(text):
        raise ConfigError(None, f"{what} must be a sha256 (64 hex digits), got {value!r}")
    return text


def large_files_document(files: Sequence[LargeFile]) -> dict:
    """The ``large_files.yml`` content (the model-zoo keys ``path``, ``url``, ``hash_val``, ``hash_type``)."""
    return {"large_files": [{"path": f.path, "url": f.url, "hash_val": f.sha256, "hash_type": "sha256"}
                            for f in files]}


def find_large_files_file(bundle_dir: str | os.PathLike, where: str) -> Path | None:
    """The bundle's ``large_files.{yml,yaml,json}``, None without one; two of them are refused."""
    found = [Path(bundle_dir) / n for n in LARGE_FILES_NAMES if (Path(bundle_dir) / n).is_file()]
    if len(found) > 1:
        raise ConfigError(where, f"the bundle has {' and '.join(p.name for p in found)}; keep one")
    return found[0] if found else None


def _safe_relative(path: object) -> str | None:
    if not isinstance(path, str) or not path or "\\" in path or path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return None
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return path


def read_large_files(file: str | os.PathLike, where: str) -> list[LargeFile]:
    """Parse and check a large-files document: each entry needs a safe relative ``path`` (no ``..``, not
    absolute, not under ``configs/``), an http(s)/file ``url`` and a sha256 ``hash_val``.

    Raises:
        ConfigError: one line naming ``where`` and the entry.
    """
    import yaml

    file = Path(file)
    try:
        text = file.read_text(encoding="utf-8")
        doc = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        raise ConfigError(where, f"{file.name}: cannot be read ({type(err).__name__})") from err
    items = doc.get("large_files") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ConfigError(where, f"{file.name}: expected a 'large_files' list")
    out: list[LargeFile] = []
    for i, item in enumerate(items):
        label = f"{file.name}: large_files[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(where, f"{label}: not a mapping")
        path = _safe_relative(item.get("path"))
        if path is None:
            raise ConfigError(where, f"{label}: path {item.get('path')!r} is not a plain relative path inside the bundle")
        if path.split("/")[0] == "configs":
            raise ConfigError(where, f"{label}: {path} would replace a config; large files are data (weights)")
        if str(item.get("hash_type", "")).lower() != "sha256" or not _SHA256.match(str(item.get("hash_val", "")).lower()):
            raise ConfigError(where, f"{label} ({path}): needs hash_type sha256 and its 64-digit hash_val; "
                                     "ctharmonize installs only verified files")
        url = item.get("url")
        if not isinstance(url, str):
            raise ConfigError(where, f"{label} ({path}): has no url")
        out.append(LargeFile(path, check_url(url, f"URL for {path}"), str(item["hash_val"]).lower()))
    if len({f.path for f in out}) != len(out):
        raise ConfigError(where, f"{file.name}: a path is listed twice")
    return out


def fetch_large_file(item: LargeFile, bundle_dir: str | os.PathLike, progress: bool = True) -> Path:
    """Download ``item`` to ``bundle_dir/item.path`` with MONAI's ``download_url``, which checks the sha256 on a
    temporary copy and moves the file into place only when it matches.

    Raises:
        WeightsError: the hash does not match (naming the URL); ConfigError: the download failed.
    """
    from monai.apps.utils import HashCheckError, download_url

    from ctharmonize.bundle.monai_logs import quiet_monai

    target = Path(bundle_dir) / item.path
    if os.path.lexists(target):
        raise ConfigError(item.url, f"{item.path} is in the bundle zip and in large_files; refusing to choose")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_monai(logging.CRITICAL), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            download_url(item.url, filepath=target, hash_val=item.sha256, hash_type="sha256", progress=progress)
    except HashCheckError as err:
        raise WeightsError(item.url, f"sha256 of the downloaded {item.path} does not match large_files "
                                     f"({item.sha256}): the file is damaged or was tampered with; nothing was "
                                     "installed") from err
    except (URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise ConfigError(item.url, f"cannot download {item.path} ({reason})") from err
    if not target.is_file():  # download_url swallows PermissionError / NotADirectoryError
        raise ConfigError(item.url, f"cannot download {item.path} (nothing was written)")
    return target
