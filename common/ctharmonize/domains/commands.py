"""``ctharmonize domains``: list the kernel domains or resolve the domain of a volume."""

from __future__ import annotations

import os

from ctharmonize.domains.registry import DomainRegistry, default_registry

__all__ = ["domains"]


def _table(registry: DomainRegistry) -> str:
    rows = [("domain", "vendor", "kernels", "sharpness", "MTF50 lp/cm", "description")]
    for info in registry.values():
        mtf = "-" if info.mtf50_lp_cm is None else f"{info.mtf50_lp_cm:g}"
        rows.append((info.name, info.vendor, "/".join(info.kernels), info.sharpness, mtf, info.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1]
                     for r in rows)


def domains(input: str | None = None, registry: str | None = None) -> None:  # noqa: A002 - the CLI flag name
    """List the known kernel domains, or print the domain of a CT volume.

    Args:
        input: a DICOM series folder or NIfTI file; without it, the domain table is printed.
        registry: a domain registry JSON/YAML file (default: the shipped default_domains.json).
    """
    reg = default_registry() if registry is None else DomainRegistry.from_file(registry)
    if input is None:
        print(_table(reg))
        return
    from ctharmonize.io import read_volume  # lazy: heavy imports only when a volume is read

    volume = read_volume(input)
    header = volume.header
    name = reg.resolve_header(header, path=os.fspath(input))
    kernel = "\\".join(header.convolution_kernel) or "(none)"
    print(f"{input}: {name} (Manufacturer {header.manufacturer!r}, ConvolutionKernel {kernel!r})")
