"""``ctharmonize verify-bundle``: verify bundle metadata offline."""

from __future__ import annotations

import json
from pathlib import Path

from ctharmonize.bundle.metadata import find_bundles, metadata_file, verify_bundle_metadata
from ctharmonize.errors import ConfigError

__all__ = ["trust_bundle", "verify_bundle"]


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
