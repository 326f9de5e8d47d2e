"""Download a model-zoo bundle zip safely: checked entries, sha256-verified large files, trust only on request.

``python -m monai.bundle download --url`` fetches and unpacks a zip but checks no hash, and its
``large_files.yml`` weights come separately. :func:`download_bundle` does the whole job and installs
nothing until everything passed, in this order, all in a temporary folder:

1. the zip (its sha256 checked when given) is inspected entry by entry: ``../``, absolute paths, symlinks,
   special files and duplicates are refused before anything is extracted (:mod:`ctharmonize.bundle.archive`);
2. ``configs/metadata.json`` is verified offline;
3. each ``large_files.yml`` entry is downloaded and its sha256 checked before it is moved into the bundle
   (:mod:`ctharmonize.bundle.large_files`); weights files must load with ``torch.load(weights_only=True)``;
4. the bundle's code digest is computed (and compared with ``code_sha256`` when given);

then the bundle appears atomically at ``out``. It is recorded as trusted only with ``trust=True``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

from ctharmonize.bundle.archive import extract_bundle_zip
from ctharmonize.bundle.large_files import (
    check_sha256,
    check_url,
    fetch_large_file,
    find_large_files_file,
    read_large_files,
)
from ctharmonize.errors import ConfigError, CTHarmonizeError, WeightsError

__all__ = ["DownloadedBundle", "download_bundle"]

_WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt")
_ZIP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.zip$")


@dataclass(frozen=True)
class DownloadedBundle:
    """What :func:`download_bundle` installed."""

    path: Path
    name: str
    version: str | None
    large_files: int
    code_sha256: str
    trusted: bool


def _fetch_zip(url: str, target: Path, sha256: str | None, progress: bool) -> None:
    from monai.apps.utils import HashCheckError, download_url

    from ctharmonize.bundle.monai_logs import quiet_monai

    try:
        with quiet_monai(logging.CRITICAL), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no hash value provided": the large files are checked below
            download_url(url, filepath=target, hash_val=sha256, hash_type="sha256", progress=progress)
    except HashCheckError as err:
        raise ConfigError(url, f"sha256 of the downloaded zip does not match --sha256 {sha256}; nothing was "
                               "installed") from err
    except (URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise ConfigError(url, f"cannot download the bundle zip ({reason})") from err
    if not target.is_file():
        raise ConfigError(url, "cannot download the bundle zip (nothing was written)")


def _staged(err: CTHarmonizeError, staging: Path, url: str) -> CTHarmonizeError:
    """An error naming a file of the temporary folder, re-worded to name ``url`` and the file's place in the
    bundle (``<url>: <name>/configs/metadata.json: ...``); other errors (naming a URL) unchanged."""
    if err.path is None or "://" in err.path:
        return err
    try:
        inside = Path(err.path).resolve().relative_to(staging.resolve()).as_posix()
    except ValueError:
        return err
    return type(err)(url, f"{inside}: {err.problem}")


def download_bundle(url: str, out: str | os.PathLike, sha256: str | None = None, code_sha256: str | None = None,
                    trust: bool = False, overwrite: bool = False, progress: bool = True) -> DownloadedBundle:
    """Download, check and install the bundle zip at ``url`` as the folder ``out`` (see the module docstring).

    Args:
        url: the zip (http://, https:// or file://), e.g. a model-zoo ``<name>_v<version>.zip``.
        out: the bundle folder to create.
        sha256: expected sha256 of the zip (optional; the weights are always checked against large_files.yml).
        code_sha256: expected code digest (``ctharmonize package-bundle`` prints it); a different one is refused.
        trust: record the installed bundle as trusted (``ctharmonize trust-bundle``) so that it runs.
        overwrite: replace an earlier ctharmonize output at ``out``.
        progress: MONAI's download progress bars.

    Raises:
        ConfigError / WeightsError: one line naming the URL; nothing is left at ``out``.
    """
    from ctharmonize.bundle.metadata import verify_bundle_metadata
    from ctharmonize.bundle.trust import bundle_code_digest, record_trusted_bundle
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output
    from ctharmonize.io.weights_file import load_weights_file

    url = check_url(url, "bundle URL")
    sha256 = None if sha256 is None else check_sha256(sha256, "--sha256")
    code_sha256 = None if code_sha256 is None else check_sha256(code_sha256, "--code_sha256")
    check_output(out, [], overwrite)
    with tempfile.TemporaryDirectory(prefix="ctharmonize-download.") as tmp:
        staging = Path(tmp) / "unpacked"
        staging.mkdir()
        name = Path(urlparse(url).path).name
        zip_path = Path(tmp) / (name if _ZIP_NAME.match(name) else "bundle.zip")  # names the progress bar
        _fetch_zip(url, zip_path, sha256, progress)
        bundle = extract_bundle_zip(zip_path, url, staging)
        try:
            verify_bundle_metadata(bundle)
            if not (bundle / "configs" / "inference.json").is_file():
                raise ConfigError(bundle / "configs", "inference.json not found (not a harmonization bundle)")
            listing = find_large_files_file(bundle, url)
            items = [] if listing is None else read_large_files(listing, url)
            for item in items:
                fetch_large_file(item, bundle, progress=progress)
            for path in sorted((bundle / "models").rglob("*")) if (bundle / "models").is_dir() else []:
                if path.suffix.lower() in _WEIGHT_SUFFIXES:
                    load_weights_file(path)  # weights_only: a pickle that would run code is refused unread
        except (ConfigError, WeightsError) as err:
            staged = _staged(err, staging, url)
            if staged is err:
                raise
            raise staged from err
        digest = bundle_code_digest(bundle)
        if code_sha256 is not None and digest != code_sha256:
            raise ConfigError(url, f"the bundle's code sha256 is {digest}, not the expected --code_sha256 "
                                   f"{code_sha256}; nothing was installed")
        meta = json.loads((bundle / "configs" / "metadata.json").read_text(encoding="utf-8"))
        with atomic_path(out, overwrite=overwrite, directory=True, record=True) as target:
            shutil.copytree(bundle, target, dirs_exist_ok=True)
    if trust:
        record_trusted_bundle(out, source=f"downloaded from {url}")
    return DownloadedBundle(Path(out), Path(bundle).name, meta.get("version"), len(items), digest, trust)
