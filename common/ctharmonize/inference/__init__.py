"""Inference: any method's translator as a volume-level harmonizer (HU in, HU out), bundle loading, export.

Volumes are HU (Z, Y, X); translators run on (B, 1, H, W) slices in [-1, 1]. A bundle's
``harmonizer`` item is a :class:`SliceHarmonizer`; :class:`HUPath` (one path, HU in / HU out) is what
it exports to TorchScript.
"""

from ctharmonize.inference.bundle_harmonizer import (
    BundleHarmonizerFactory,
    bundle_default_target,
    bundle_model_name,
    load_bundle_harmonizer,
    read_bundle_config,
)
from ctharmonize.inference.cohort import harmonize_cohort
from ctharmonize.inference.harmonize import harmonize_volume, harmonized_volume
from ctharmonize.inference.harmonize_datalist import harmonize_datalist
from ctharmonize.inference.harmonizer import Harmonizer, call_harmonizer, needs_spacing, target_domains
from ctharmonize.inference.hu_path import HUPath
from ctharmonize.inference.hu_wrapper import HUWrapper
from ctharmonize.inference.measured_mtf import MeasuredMTF
from ctharmonize.inference.sample import ensure_sample_volume
from ctharmonize.inference.slice_harmonizer import SliceHarmonizer, default_batch_size
from ctharmonize.inference.source_domain import check_model_domain, resolve_source_domain
from ctharmonize.inference.spacing_policy import (
    SpacingPolicy,
    attach_spacing_policy,
    harmonize_at_trained_spacing,
    spacing_policy_of,
)
from ctharmonize.inference.stargan_model import (
    reference_guided,
    reference_slices,
    stargan_translator_from_checkpoint,
    write_stargan_model,
)
from ctharmonize.inference.weight_averaging import average_network_weights
from ctharmonize.inference.weight_merging import merge_network_weights
from ctharmonize.io.network_weights import load_network_weights, read_network_state

__all__ = [
    "BundleHarmonizerFactory",
    "HUPath",
    "HUWrapper",
    "MeasuredMTF",
    "Harmonizer",
    "SliceHarmonizer",
    "SpacingPolicy",
    "attach_spacing_policy",
    "call_harmonizer",
    "average_network_weights",
    "merge_network_weights",
    "needs_spacing",
    "target_domains",
    "bundle_default_target",
    "bundle_model_name",
    "check_model_domain",
    "default_batch_size",
    "ensure_sample_volume",
    "harmonize_cohort",
    "harmonize_at_trained_spacing",
    "harmonize_datalist",
    "harmonize_volume",
    "harmonized_volume",
    "load_bundle_harmonizer",
    "load_network_weights",
    "read_bundle_config",
    "read_network_state",
    "reference_guided",
    "reference_slices",
    "resolve_source_domain",
    "spacing_policy_of",
    "stargan_translator_from_checkpoint",
    "write_stargan_model",
]
