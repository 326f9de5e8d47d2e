"""Offline verification of MONAI Bundle ``configs/metadata.json`` files.

``monai.bundle.verify_metadata`` downloads the schema named in the metadata's ``schema`` field
unless a file already exists at ``filepath``; we pass the shipped ``metadata_schema.json`` so it
never touches the network.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ctharmonize.bundle.monai_logs import quiet_monai
from ctharmonize.bundle.trained_spacing import trained_pixel_spacing
from ctharmonize.data.documents import load_document, load_schema, schema_problem
from ctharmonize.errors import ConfigError

__all__ = ["METADATA_SCHEMA_FILE", "metadata_file", "verify_bundle_metadata", "find_bundles"]

METADATA_SCHEMA_FILE = Path(__file__).resolve().parent / "metadata_schema.json"


def metadata_file(bundle: str | os.PathLike) -> Path:
    """``<bundle>/configs/metadata.json`` for a bundle folder, or ``bundle`` itself if it is a file."""
    bundle = Path(bundle)
    if bundle.is_file():
        return bundle
    meta = bundle / "configs" / "metadata.json"
    if not meta.is_file():
        problem = "no such file or folder" if not bundle.exists() else "not a bundle: configs/metadata.json not found"
        raise ConfigError(bundle, problem)
    return meta


def verify_bundle_metadata(bundle_dir: str | os.PathLike) -> None:
    """Verify a bundle's metadata against the shipped schema, offline, with MONAI's verifier.

    Args:
        bundle_dir: the bundle folder (holding ``configs/metadata.json``) or the metadata file.

    Raises:
        ConfigError: ``"<metadata.json>: network_data_format.inputs.image: 'dtype' is a required
            property"`` (schema violations name the location), invalid JSON, a ``version``
            missing from ``changelog``, or a malformed ``trained_pixel_spacing_mm`` ([min, max] mm).
    """
    from monai.bundle import verify_metadata

    meta = metadata_file(bundle_dir)
    doc = load_document(meta, ConfigError)
    try:
        with quiet_monai():
            # the file exists, so MONAI skips the download; its md5 (of our own file) only silences
            # MONAI's "no hash value provided" warning
            verify_metadata(meta_file=os.fspath(meta), filepath=os.fspath(METADATA_SCHEMA_FILE), create_dir=False,
                            hash_val=hashlib.md5(METADATA_SCHEMA_FILE.read_bytes()).hexdigest(), hash_type="md5")
    except Exception as err:  # MONAI raises ValueError with a multi-line message
        problem = schema_problem(doc, load_schema(os.fspath(METADATA_SCHEMA_FILE)))
        raise ConfigError(meta, problem or str(err).splitlines()[0]) from err
    if doc["version"] not in doc["changelog"]:
        raise ConfigError(meta, f"changelog: has no entry for the current version {doc['version']!r}")
    trained_pixel_spacing(doc, meta)  # min <= max and finite: what the schema cannot say


def find_bundles(root: str | os.PathLike = "bundles") -> list[Path]:
    """Bundle folders ``<root>/<name>/`` that hold ``configs/metadata.json``, sorted; [] if none."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent.parent for p in root.glob("*/configs/metadata.json"))
