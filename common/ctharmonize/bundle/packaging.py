"""Package a bundle as a model-zoo release: ``<name>_v<version>.zip`` plus its weights, referenced by sha256.

The zip holds ``<name>/configs/``, ``docs/``, ``LICENSE`` (and any other non-data file) and a
``large_files.yml`` naming each file of ``models/`` with its URL under ``weights_url`` and its sha256;
the weights themselves are written next to the zip, to be published at ``weights_url``. Metadata are
verified offline first, and every ``.pt``/``.pth`` must load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import yaml

from ctharmonize.bundle.archive import extract_bundle_zip, write_bundle_zip
from ctharmonize.bundle.large_files import LARGE_FILES_NAMES, LargeFile, check_url, large_files_document
from ctharmonize.errors import ConfigError

__all__ = ["PackagedBundle", "package_bundle"]

# not part of a release: outputs and generated samples (models/ goes to large_files.yml)
_SKIPPED_FOLDERS = ("eval", "sample", "sample_data", "eval_data")
_WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PackagedBundle:
    """What :func:`package_bundle` wrote: the zip, its sha256, the large files and the code digest a
    downloader will see (:func:`ctharmonize.bundle.bundle_code_digest` of the unpacked bundle)."""

    folder: Path
    zip_path: Path
    zip_sha256: str
    large_files: tuple[LargeFile, ...]
    code_sha256: str


def _release_files(bundle: Path) -> tuple[dict[str, Path], list[str]]:
    """(files for the zip, files of models/) as relative POSIX names; symlinks are refused."""
    zipped: dict[str, Path] = {}
    large: list[str] = []
    for root, dirs, names in os.walk(bundle):
        rel_root = Path(root).relative_to(bundle)
        top = rel_root == Path(".")
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__"
                         and not (top and (d in _SKIPPED_FOLDERS or d.startswith("train_output"))))
        for name in sorted(names + [d for d in dirs if Path(root, d).is_symlink()]):
            path = Path(root, name)
            rel = path.relative_to(bundle).as_posix()
            if path.is_symlink():
                raise ConfigError(path, "is a symbolic link; a model-zoo zip holds plain files only")
            if name.startswith(".") or path.suffix == ".pyc" or (top and name in LARGE_FILES_NAMES):
                continue  # output records, caches; large_files.yml is written anew
            if rel.split("/")[0] == "models":
                large.append(rel)
            else:
                zipped[rel] = path
    return zipped, large


def package_bundle(bundle: str | os.PathLike, out: str | os.PathLike, weights_url: str,
                   overwrite: bool = False) -> PackagedBundle:
    """Write ``out/`` holding ``<name>_v<version>.zip``, one ``<name>_v<version>_<path>`` file per file of
    ``models/`` (``/`` as ``_``) and ``SHA256SUMS``; publish the folder's files at ``weights_url``.

    Args:
        bundle: the bundle folder (its name is the zip's top folder and the bundle name).
        out: the release folder to create (atomically; replaced only with ``overwrite`` if ctharmonize wrote it).
        weights_url: the http(s):// or file:// URL under which ``out``'s files will be served.
        overwrite: replace an earlier release folder written by ctharmonize.

    Raises:
        ConfigError: bad metadata (verified offline), no LICENSE or inference.json, a symlink, a bad URL;
            WeightsError: a weights file that does not load with ``weights_only=True``.
    """
    from ctharmonize.bundle.metadata import metadata_file, verify_bundle_metadata
    from ctharmonize.bundle.trust import bundle_code_digest
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.file_digest import sha256_of
    from ctharmonize.io.output_check import check_output
    from ctharmonize.io.weights_file import load_weights_file

    bundle = Path(bundle)
    if not bundle.is_dir():
        raise ConfigError(bundle, "no such bundle folder")
    base_url = check_url(weights_url, "--weights_url").rstrip("/")
    name = bundle.resolve().name
    if not _NAME.match(name):
        raise ConfigError(bundle, f"the folder name {name!r} cannot name a bundle (letters, digits, _ . -)")
    check_output(out, [bundle], overwrite)
    verify_bundle_metadata(bundle)
    for required in ("LICENSE", "configs/inference.json"):
        if not (bundle / required).is_file():
            raise ConfigError(bundle, f"a model-zoo bundle needs {required}")
    version = json.loads(metadata_file(bundle).read_text(encoding="utf-8"))["version"]
    stem = f"{name}_v{version}"
    zipped, large = _release_files(bundle)
    entries = []
    for rel in large:
        if Path(rel).suffix.lower() in _WEIGHT_SUFFIXES:
            load_weights_file(bundle / rel)  # refuses a pickle that would run code
        published = f"{stem}_{rel.replace('/', '_')}"
        entries.append((LargeFile(rel, f"{base_url}/{quote(published)}", sha256_of(bundle / rel)), published))
    listing = yaml.safe_dump(large_files_document([f for f, _ in entries]), sort_keys=False).encode()
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        zip_path = tmp / f"{stem}.zip"
        write_bundle_zip({**zipped, "large_files.yml": listing}, zip_path, name)
        for item, published in entries:
            shutil.copyfile(bundle / item.path, tmp / published)
        sums = [(sha256_of(zip_path), zip_path.name)] + [(f.sha256, p) for f, p in entries]
        (tmp / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for h, n in sums))
        with tempfile.TemporaryDirectory(prefix=".ctharmonize-package-check.") as check:
            code = bundle_code_digest(extract_bundle_zip(zip_path, os.fspath(zip_path), check))
    out = Path(out)
    return PackagedBundle(out, out / zip_path.name, sums[0][0], tuple(f for f, _ in entries), code)
