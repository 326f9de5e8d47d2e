"""Kernel-domain registry: (Manufacturer, ConvolutionKernel) header values -> domain name.

Matching rules:

* Manufacturer: case-insensitive *substring* match against each vendor's key list
  (``"Siemens Healthineers"`` contains ``"SIEMENS"``). A missing/empty manufacturer matches
  every vendor, and the kernel must then identify a single domain.
* ConvolutionKernel: case-insensitive *exact* match (surrounding whitespace ignored) against a
  domain's aliases. The tag may be multi-valued (``["FC51", "AIDR 3D"]``, Siemens ``["Br40d", "3"]``
  with the iterative strength second): values that name no domain are ignored; if the values name
  more than one domain (GE ``STANDARD\\BONE``) resolution refuses with :class:`AmbiguousDomainError`
  listing the candidates (``--source`` resolves it).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ctharmonize.data.documents import check_document, load_document
from ctharmonize.domains.domain_info import DomainInfo
from ctharmonize.errors import AmbiguousDomainError, ConfigError, UnknownDomainError
from ctharmonize.io.volume import HeaderSummary

__all__ = ["DomainRegistry", "default_registry", "DEFAULT_DOMAINS_FILE", "DOMAINS_SCHEMA_FILE"]

_HERE = Path(__file__).resolve().parent
DEFAULT_DOMAINS_FILE = _HERE / "default_domains.json"
DOMAINS_SCHEMA_FILE = _HERE / "domains.schema.json"


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


class DomainRegistry(Mapping[str, DomainInfo]):
    """Ordered mapping ``name -> DomainInfo`` plus header resolution.

    Args:
        domains: the domains, in registry order (this order defines domain indices).
        vendors: vendor key -> Manufacturer substrings.
        source: the file the registry was read from (named in error messages), or None.
    """

    def __init__(self, domains: Sequence[DomainInfo], vendors: Mapping[str, Sequence[str]],
                 source: str | os.PathLike | None = None):
        self.source = None if source is None else os.fspath(source)
        self.vendors = {key: tuple(values) for key, values in vendors.items()}
        self._domains: dict[str, DomainInfo] = {}
        self._by_kernel: dict[str, list[DomainInfo]] = {}
        for info in domains:
            if info.name in self._domains:
                raise ConfigError(self.source, f"domain {info.name!r} defined twice")
            if info.vendor not in self.vendors:
                raise ConfigError(self.source, f"domain {info.name!r}: vendor {info.vendor!r} is not in 'vendors'")
            for alias in info.kernels:
                clash = [d.name for d in self._by_kernel.get(_norm(alias), []) if d.vendor == info.vendor]
                if clash:
                    raise ConfigError(self.source, f"kernel {alias!r} of vendor {info.vendor!r} is listed by "
                                                   f"both {clash[0]!r} and {info.name!r}")
                self._by_kernel.setdefault(_norm(alias), []).append(info)
            self._domains[info.name] = info

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: dict, source: str | os.PathLike | None = None) -> DomainRegistry:
        """Build from a document of the form of ``default_domains.json`` (validated by its schema)."""
        check_document(doc, DOMAINS_SCHEMA_FILE, source, ConfigError)
        domains = [
            DomainInfo(name=name, vendor=d["vendor"], kernels=tuple(d["kernels"]), sharpness=d["sharpness"],
                       mtf50_lp_cm=d.get("mtf50_lp_cm"), description=d.get("description", ""),
                       family=d.get("family"), group=d.get("group"))
            for name, d in doc["domains"].items()
        ]
        return cls(domains, doc["vendors"], source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> DomainRegistry:
        """Read a registry from a JSON or YAML file; bad files raise :class:`ConfigError`."""
        return cls.from_dict(load_document(path, ConfigError), source=path)

    # --- mapping ------------------------------------------------------------------------
    def __getitem__(self, name: str) -> DomainInfo:
        return self._domains[self.validate_name(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._domains

    def get(self, name: str, default: DomainInfo | None = None) -> DomainInfo | None:
        return self._domains.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._domains)

    def __len__(self) -> int:
        return len(self._domains)

    def __repr__(self) -> str:
        return f"DomainRegistry({self.names()}, source={self.source!r})"

    def names(self) -> list[str]:
        """Domain names in registry order."""
        return list(self._domains)

    def index(self, name: str) -> int:
        """Position of ``name`` in :meth:`names` (an integer domain label)."""
        return self.names().index(self.validate_name(name))

    def validate_name(self, name: str, path: str | os.PathLike | None = None) -> str:
        """Return ``name`` if it is a known domain, else raise :class:`UnknownDomainError`."""
        if not isinstance(name, str) or name not in self._domains:
            raise UnknownDomainError(path, f"unknown domain {name!r}; known domains: {', '.join(self._domains)}")
        return name

    def validate_target(self, name: str, path: str | os.PathLike | None = None) -> str:
        """:meth:`validate_name` for a harmonization target, which may also be the ground truth
        (:data:`~ctharmonize.domains.reference.TRUTH_DOMAIN`, paper 001's target; not a scanner's kernel)."""
        from ctharmonize.domains.reference import TRUTH_DOMAIN

        return name if name == TRUTH_DOMAIN else self.validate_name(name, path)

    # --- resolution ---------------------------------------------------------------------
    def vendor_of(self, manufacturer: str | None) -> list[str]:
        """Vendor keys whose substrings occur in ``manufacturer`` (all vendors if it is empty)."""
        if manufacturer is None or not _norm(manufacturer):
            return list(self.vendors)
        text = _norm(manufacturer)
        return [key for key, subs in self.vendors.items() if any(_norm(s) in text for s in subs)]

    def resolve(self, manufacturer: str | None, kernel: str | Sequence[str] | None,
                path: str | os.PathLike | None = None) -> str:
        """Domain name for a Manufacturer and a (possibly multi-valued) ConvolutionKernel.

        ``path`` (the image the values come from) is only used in the error message.
        Raises :class:`UnknownDomainError` listing the known domains when nothing matches, and
        :class:`AmbiguousDomainError` (a subclass) when the values name several domains.
        """
        values = [kernel] if isinstance(kernel, str) else list(kernel or ())
        shown = "/".join(str(v) for v in values) if values else "(none)"
        known = ", ".join(f"{d.name} ({d.vendor} {'/'.join(d.kernels)})" for d in self._domains.values())
        vendors = self.vendor_of(manufacturer)
        if not vendors:
            makers = ", ".join(f"{k} ({'/'.join(v)})" for k, v in self.vendors.items())
            raise UnknownDomainError(path, f"unknown kernel {shown!r} for manufacturer {manufacturer!r}: the "
                                           f"manufacturer matches no vendor ({makers}); known domains: {known}")
        found: dict[str, str] = {}  # domain name -> the kernel value that named it
        for value in values:
            matches = [d for d in self._by_kernel.get(_norm(value), []) if d.vendor in vendors]
            if len(matches) > 1:
                raise AmbiguousDomainError(path, f"kernel {value!r} is ambiguous without a manufacturer: "
                                                 f"{', '.join(d.name for d in matches)}; pass --source "
                                                 "with one of them")
            if matches:
                found.setdefault(matches[0].name, str(value))
        if len(found) == 1:
            return next(iter(found))
        if len(found) > 1:
            candidates = ", ".join(f"{name} ({value})" for name, value in found.items())
            raise AmbiguousDomainError(path, f"ConvolutionKernel {shown!r} names {len(found)} known kernels: "
                                             f"{candidates}; which one the image was reconstructed with is "
                                             "ambiguous; pass --source with one of them")
        raise UnknownDomainError(path, f"unknown kernel {shown!r} for manufacturer {manufacturer!r}; "
                                       f"known domains: {known}")

    def resolve_header(self, header: HeaderSummary, path: str | os.PathLike | None = None) -> str:
        """Domain name of a :class:`~ctharmonize.io.volume.HeaderSummary`."""
        return self.resolve(header.manufacturer, header.convolution_kernel, path=path)


@functools.cache
def default_registry() -> DomainRegistry:
    """The shipped registry (``default_domains.json``), read once."""
    return DomainRegistry.from_file(DEFAULT_DOMAINS_FILE)
