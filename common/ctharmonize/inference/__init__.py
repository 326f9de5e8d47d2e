"""Inference: slice-wise harmonization of CT volumes with a multipath generator, bundle loading, export.

Volumes are HU (Z, Y, X); networks run on (B, 1, H, W) slices in [-1, 1]; :class:`HUWrapper` /
:class:`MultipathHUPath` are HU in / HU out (what the bundle exports to TorchScript).
"""

from ctharmonize.inference.bundle_generator import (
    bundle_model_name,
    load_bundle_generator,
    read_bundle_config,
)
from ctharmonize.inference.generator_weights import (
    GENERATOR_KEYS,
    extract_generator_state,
    load_generator_weights,
    read_generator_state,
)
from ctharmonize.inference.harmonize import harmonize_volume, harmonized_volume
from ctharmonize.inference.harmonize_datalist import harmonize_datalist
from ctharmonize.inference.hu_wrapper import HUWrapper
from ctharmonize.inference.multipath_hu_path import MultipathHUPath
from ctharmonize.inference.sample import ensure_sample_volume
from ctharmonize.inference.slice_harmonizer import SliceHarmonizer, default_batch_size
from ctharmonize.inference.source_domain import check_model_domain, resolve_source_domain
from ctharmonize.inference.weight_averaging import average_generator_weights

__all__ = [
    "GENERATOR_KEYS",
    "average_generator_weights",
    "HUWrapper",
    "MultipathHUPath",
    "SliceHarmonizer",
    "bundle_model_name",
    "check_model_domain",
    "default_batch_size",
    "ensure_sample_volume",
    "extract_generator_state",
    "harmonize_datalist",
    "harmonize_volume",
    "harmonized_volume",
    "load_bundle_generator",
    "load_generator_weights",
    "read_bundle_config",
    "read_generator_state",
    "resolve_source_domain",
]
