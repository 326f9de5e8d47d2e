"""Kernel-domain registry: map DICOM (Manufacturer, ConvolutionKernel) to domain names."""

from ctharmonize.domains.domain_info import DomainInfo
from ctharmonize.domains.reference import DEFAULT_REFERENCE_KERNEL
from ctharmonize.domains.registry import DEFAULT_DOMAINS_FILE, DomainRegistry, default_registry

__all__ = ["DEFAULT_DOMAINS_FILE", "DEFAULT_REFERENCE_KERNEL", "DomainInfo", "DomainRegistry", "default_registry"]
