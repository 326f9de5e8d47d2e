"""MONAI bundle support: offline metadata schema and verification."""

from ctharmonize.bundle.metadata import (
    METADATA_SCHEMA_FILE,
    find_bundles,
    metadata_file,
    verify_bundle_metadata,
)

__all__ = ["METADATA_SCHEMA_FILE", "find_bundles", "metadata_file", "verify_bundle_metadata"]
