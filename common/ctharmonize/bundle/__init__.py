"""MONAI bundle support: offline metadata schema and verification, bundle root, bundle trust, model-zoo
packaging and verified download."""

from ctharmonize.bundle.bundle_root import default_bundle_root
from ctharmonize.bundle.download import download_bundle
from ctharmonize.bundle.metadata import (
    METADATA_SCHEMA_FILE,
    find_bundles,
    metadata_file,
    verify_bundle_metadata,
)
from ctharmonize.bundle.packaging import package_bundle
from ctharmonize.bundle.trust import (
    UntrustedBundleError,
    bundle_code_digest,
    check_bundle_trusted,
    record_trusted_bundle,
)

__all__ = ["METADATA_SCHEMA_FILE", "UntrustedBundleError", "bundle_code_digest", "check_bundle_trusted",
           "default_bundle_root", "download_bundle", "find_bundles", "metadata_file", "package_bundle",
           "record_trusted_bundle", "verify_bundle_metadata"]
