"""Which scans of a cohort are compared with which: paired (same subject) and unpaired (distributions).

A scan is one datalist entry: ``image`` (the original, unharmonized volume), ``kernel`` (its
domain) and ``subject``; optionally ``harmonized`` (the harmonized version of ``image``) and
``target`` (the domain it was harmonized to; default: the cohort's reference kernel), ``lung``
(lung mask path), ``vendor``, ``split``. A harmonized image may also be listed as its own entry
with ``source_kernel``: it is then attached to the entry of the same subject whose ``kernel`` is
that source kernel (its own ``kernel`` is the target).

* Paired: a scan with kernel ``k`` is paired with the scan of the SAME subject whose kernel is
  ``paired_references.get(k, reference_kernel)`` (e.g. ``siemens_b50f`` -> ``siemens_b30f``,
  ``ge_bone`` -> ``ge_standard``): pixel-aligned reconstructions of one acquisition.
* Unpaired: every kernel other than ``reference_kernel`` is compared, as a distribution over
  subjects, with the reference kernel's distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctharmonize.domains.reference import DEFAULT_REFERENCE_KERNEL
from ctharmonize.errors import DatalistError

__all__ = ["DEFAULT_REFERENCE_KERNEL", "DEFAULT_PAIRED_REFERENCES", "Scan", "Cohort", "build_cohort"]

# sharp kernel -> the same vendor's soft kernel it is compared with when the subject has both
DEFAULT_PAIRED_REFERENCES: dict[str, str] = {
    "siemens_b50f": "siemens_b30f",
    "siemens_b70f": "siemens_b30f",
    "ge_bone": "ge_standard",
    "ge_lung": "ge_standard",
}


@dataclass
class Scan:
    """One original scan, its optional harmonized version and its pairing."""

    index: int  # position in the cohort (datalist order)
    image: str
    kernel: str
    subject: str
    vendor: str | None = None
    split: str | None = None
    harmonized: str | None = None
    target: str | None = None  # domain the harmonized image imitates
    lung: str | None = None
    labels: str | None = None
    paired_reference: int | None = None  # index of the paired reference scan (same subject)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cohort:
    """Scans plus the kernels they are compared with."""

    scans: list[Scan]
    reference_kernel: str
    paired_references: dict[str, str]

    @property
    def kernels(self) -> list[str]:
        """Kernels present, reference first, then sorted."""
        ks = sorted({s.kernel for s in self.scans})
        return sorted(ks, key=lambda k: (k != self.reference_kernel, k))

    def pairs(self) -> list[tuple[Scan, Scan]]:
        """(scan, paired reference scan) for every paired scan."""
        return [(s, self.scans[s.paired_reference]) for s in self.scans if s.paired_reference is not None]

    def by_subject(self) -> dict[str, list[Scan]]:
        """Scans grouped by subject (datalist order kept)."""
        groups: dict[str, list[Scan]] = {}
        for s in self.scans:
            groups.setdefault(s.subject, []).append(s)
        return groups

    @property
    def has_harmonized(self) -> bool:
        return any(s.harmonized for s in self.scans)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def build_cohort(
    entries: Sequence[Mapping[str, Any]],
    reference_kernel: str = DEFAULT_REFERENCE_KERNEL,
    paired_references: Mapping[str, str] | None = None,
    source: str | Path | None = None,
) -> Cohort:
    """Turn datalist entries (paths already resolved) into a :class:`Cohort`.

    Raises :class:`DatalistError` (naming ``source`` and the entry) when an entry lacks
    ``kernel``, when two entries share a subject and kernel, or when a ``source_kernel`` entry
    has no original to attach to.
    """
    refs = dict(DEFAULT_PAIRED_REFERENCES if paired_references is None else paired_references)
    originals: list[tuple[int, Mapping[str, Any]]] = []
    harmonized: list[tuple[int, Mapping[str, Any]]] = []
    for i, entry in enumerate(entries):
        if not entry.get("image"):
            raise DatalistError(source, f"entry {i}: 'image' missing")
        if not entry.get("kernel"):
            raise DatalistError(source, f"entry {i}: 'kernel' missing; evaluation needs each scan's kernel domain")
        (harmonized if entry.get("source_kernel") else originals).append((i, entry))

    scans: list[Scan] = []
    seen: dict[tuple[str, str], int] = {}
    known = {"image", "kernel", "subject", "vendor", "split", "harmonized", "target", "lung", "labels"}
    for i, entry in originals:
        subject = _str(entry.get("subject")) or Path(str(entry["image"])).name
        key = (subject, str(entry["kernel"]))
        if key in seen:
            raise DatalistError(source, f"entry {i}: subject {subject!r} already has a {key[1]!r} scan (entry {seen[key]})")
        seen[key] = len(scans)
        scans.append(
            Scan(
                index=len(scans),
                image=str(entry["image"]),
                kernel=str(entry["kernel"]),
                subject=subject,
                vendor=_str(entry.get("vendor")),
                split=_str(entry.get("split")),
                harmonized=_str(entry.get("harmonized")),
                target=_str(entry.get("target")),
                lung=_str(entry.get("lung")),
                labels=_str(entry.get("labels")),
                extra={k: v for k, v in entry.items() if k not in known},
            )
        )
    for i, entry in harmonized:
        subject = _str(entry.get("subject")) or ""
        key = (subject, str(entry["source_kernel"]))
        if key not in seen:
            raise DatalistError(
                source, f"entry {i}: harmonized image of subject {subject!r} from {key[1]!r} has no original entry"
            )
        scan = scans[seen[key]]
        if scan.harmonized:
            raise DatalistError(source, f"entry {i}: subject {subject!r} {key[1]!r} already has a harmonized image")
        scan.harmonized = str(entry["image"])
        scan.target = str(entry["kernel"])
    for scan in scans:
        if scan.harmonized and not scan.target:
            scan.target = reference_kernel
        ref_kernel = refs.get(scan.kernel, reference_kernel)
        if ref_kernel != scan.kernel and (scan.subject, ref_kernel) in seen:
            scan.paired_reference = seen[(scan.subject, ref_kernel)]
    return Cohort(scans=scans, reference_kernel=reference_kernel, paired_references=refs)
