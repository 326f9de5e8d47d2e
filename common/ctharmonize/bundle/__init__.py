"""MONAI bundle support: offline metadata schema and verification, bundle root, bundle trust."""

from ctharmonize.bundle.bundle_root import default_bundle_root
from ctharmonize.bundle.metadata import (
    METADATA_SCHEMA_FILE,
    find_bundles,
    metadata_file,
    verify_bundle_metadata,
)
from ctharmonize.bundle.trust import (
    UntrustedBundleError,
    bundle_code_digest,
    check_bundle_trusted,
    record_trusted_bundle,
)

__all__ = ["METADATA_SCHEMA_FILE", "UntrustedBundleError", "bundle_code_digest", "check_bundle_trusted",
           "default_bundle_root", "find_bundles", "metadata_file", "record_trusted_bundle",
           "verify_bundle_metadata"]
