"""Validation of kernel-domain names used as ``nn.ModuleDict`` keys by the multipath networks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from torch import nn

from ctharmonize.errors import ConfigError, UnknownDomainError

__all__ = ["check_domain", "check_domain_names", "check_path_domains"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# attributes of the multipath containers that a ModuleDict key would shadow
_RESERVED = frozenset({"domains", "add_domain", "freeze_except", "encode", "decode", "path"})


def check_domain_names(domains: Sequence[str] | str, existing: Iterable[str] = ()) -> tuple[str, ...]:
    """Return ``domains`` as a tuple after checking they are non-empty, unique, well-formed new names.

    Raises :class:`~ctharmonize.errors.ConfigError` (names must match ``[A-Za-z0-9][A-Za-z0-9_-]*``,
    e.g. ``siemens_b30f``, and must not shadow an ``nn.ModuleDict`` attribute such as ``keys``).
    """
    if isinstance(domains, str):
        domains = (domains,)
    names = tuple(domains)
    if not names:
        raise ConfigError(None, "the domain list is empty")
    taken = set(existing)
    for name in names:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(None, f"invalid domain name {name!r}: use letters, digits, '_' or '-', e.g. 'siemens_b30f'")
        if hasattr(nn.ModuleDict(), name) or name in _RESERVED:
            raise ConfigError(None, f"domain name {name!r} is reserved (a network attribute); choose another")
        if name in taken:
            raise ConfigError(None, f"domain {name!r} is listed twice")
        taken.add(name)
    return names


def check_path_domains(source: str, target: str, known: Iterable[str]) -> bool:
    """Check that ``source`` and ``target`` are in ``known`` (one-line :class:`~ctharmonize.errors.UnknownDomainError`
    otherwise); return whether the path is the identity (``source == target``)."""
    known = list(known)
    check_domain(source, known, "source domain")
    check_domain(target, known, "target domain")
    return source == target


def check_domain(name: str, known: Iterable[str], role: str = "domain") -> str:
    """Return ``name`` if it is in ``known``; else raise :class:`~ctharmonize.errors.UnknownDomainError`."""
    known = list(known)
    if name not in known:
        raise UnknownDomainError(None, f"unknown {role} {name!r}; this network has {', '.join(known)}")
    return name
