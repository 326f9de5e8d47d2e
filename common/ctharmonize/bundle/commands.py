"""Bundle commands: ``verify-bundle`` (metadata offline), ``trust-bundle``, ``package-bundle``, ``download-bundle``."""

from __future__ import annotations

import json
from pathlib import Path

from ctharmonize.bundle.metadata import find_bundles, metadata_file, verify_bundle_metadata
from ctharmonize.errors import ConfigError

__all__ = ["download_bundle", "package_bundle", "trust_bundle", "verify_bundle"]


def verify_bundle(bundle: str = "bundles") -> None:
    """Verify the metadata.json of one bundle, or of every bundle under a folder.

    Args:
        bundle: a bundle folder, its configs/metadata.json, or a folder of bundles (default: bundles).
    """
    p = Path(bundle)
    is_bundle = p.is_file() or (p / "configs" / "metadata.json").is_file()
    bundles = [p] if is_bundle else find_bundles(p)
    if not bundles:
        if not p.exists():
            raise ConfigError(p, "no such file or folder")
        raise ConfigError(p, "no bundles found (expected <bundle>/configs/metadata.json)")
    for bundle in bundles:
        verify_bundle_metadata(bundle)
        meta = metadata_file(bundle)
        version = json.loads(meta.read_text(encoding="utf-8"))["version"]
        print(f"{meta}: metadata OK (version {version})")


def trust_bundle(bundle: str) -> str:
    """Record a bundle you have reviewed as trusted, so that ``harmonize --bundle`` runs its configs.

    A bundle's configs are code (MONAI evaluates their ``$`` expressions). The record holds the sha256 of
    the bundle's configs and code files, so any later change withdraws the trust.

    Args:
        bundle: the bundle folder.
    """
    from ctharmonize.bundle.trust import record_trusted_bundle, trusted_bundles_file

    digest = record_trusted_bundle(bundle)
    return f"{bundle}: trusted (code sha256 {digest}), recorded in {trusted_bundles_file()}"


def package_bundle(bundle: str, out: str, weights_url: str, overwrite: bool = False) -> str:
    """Package a bundle as a model-zoo release: a zip without weights, plus the weights, named in large_files.yml.

    ``out`` gets ``<name>_v<version>.zip`` (``<name>/configs``, ``docs``, ``LICENSE``, ``large_files.yml``), each
    file of ``models/`` as ``<name>_v<version>_models_<file>`` and ``SHA256SUMS``. Publish all of them at
    ``weights_url``; ``large_files.yml`` gives each weight file's URL there and its sha256. The metadata are
    verified offline first.

    Args:
        bundle: the bundle folder.
        out: the release folder to create.
        weights_url: http(s):// or file:// URL under which the files of ``out`` will be served.
        overwrite: replace an earlier release folder written by ctharmonize.
    """
    from ctharmonize.bundle.packaging import package_bundle as package

    result = package(bundle, out, weights_url, overwrite=overwrite)
    return (f"{result.zip_path}: sha256 {result.zip_sha256}, {len(result.large_files)} large file(s) under "
            f"{weights_url}; code sha256 {result.code_sha256} (publish it: 'download-bundle --code_sha256' checks it)")


def download_bundle(url: str, out: str, sha256: str | None = None, code_sha256: str | None = None,
                    trust: bool = False, overwrite: bool = False, quiet: bool = False) -> str:
    """Download a bundle zip, verify it (entries, metadata, large files' sha256, safe weights) and install it.

    Nothing is installed unless every check passes. The bundle's configs are code: it runs with
    ``harmonize --bundle`` only once trusted, with ``--trust`` here or ``ctharmonize trust-bundle`` after review.

    Args:
        url: http(s):// or file:// URL of the zip (e.g. made by ``ctharmonize package-bundle``).
        out: the bundle folder to create.
        sha256: expected sha256 of the zip.
        code_sha256: expected code digest of the bundle (printed by ``package-bundle``); refuse another.
        trust: record the bundle as trusted to run (its code sha256 is printed).
        overwrite: replace an earlier bundle folder written by ctharmonize.
        quiet: no download progress bars.
    """
    from ctharmonize.bundle.download import download_bundle as download
    from ctharmonize.bundle.trust import trusted_bundles_file

    result = download(url, out, sha256=sha256, code_sha256=code_sha256, trust=trust, overwrite=overwrite,
                      progress=not quiet)
    trusted = (f"trusted (recorded in {trusted_bundles_file()})" if result.trusted else
               f"NOT trusted: review {out}/configs, then 'ctharmonize trust-bundle --bundle {out}'")
    return (f"{out}: {result.name} {result.version}, {result.large_files} large file(s) sha256-verified; "
            f"code sha256 {result.code_sha256}; {trusted}")
