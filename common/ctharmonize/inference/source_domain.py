"""Which kernel domain a volume comes from: given by the user or read from its header via the registry."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ctharmonize.domains import DomainRegistry, default_registry
from ctharmonize.errors import UnknownDomainError
from ctharmonize.io.volume import Volume

__all__ = ["resolve_source_domain", "check_model_domain"]


def check_model_domain(domain: str, model_domains: Iterable[str], role: str = "source",
                       path: str | os.PathLike | None = None) -> str:
    """Return ``domain`` if the model has a path for it, else a one-line :class:`UnknownDomainError`."""
    known = list(model_domains)
    if domain not in known:
        raise UnknownDomainError(path, f"{role} kernel domain {domain!r} is not one this model was trained on; "
                                       f"the model knows: {', '.join(known)}")
    return domain


def resolve_source_domain(
    volume: Volume,
    source: str | None = None,
    model_domains: Iterable[str] | None = None,
    path: str | os.PathLike | None = None,
    registry: DomainRegistry | None = None,
) -> str:
    """Source domain of ``volume``: ``source`` if given (checked against the registry), else resolved
    from the header's Manufacturer and ConvolutionKernel. An explicit ``source`` wins over the header,
    also over an ambiguous multi-valued kernel such as ``STANDARD\\BONE``.

    Args:
        volume: the input volume (only its header is used).
        source: a domain name such as ``"ge_bone"``, or None to read it from the header.
        model_domains: domains the model has encoders for; the result must be one of them.
        path: the input path, named in error messages.
        registry: kernel-domain registry (default: the shipped one).

    Raises:
        UnknownDomainError: one line listing the known domains (registry or model).
        AmbiguousDomainError: (a subclass) the kernel values name several domains; the line lists
            them and says that ``--source`` resolves it.
    """
    registry = registry or default_registry()
    if source:
        domain = registry.validate_name(str(source), path)
    else:
        domain = registry.resolve_header(volume.header, path)
    if model_domains is not None:
        check_model_domain(domain, model_domains, "source", path)
    return domain
