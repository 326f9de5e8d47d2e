"""One kernel domain: a (vendor, reconstruction kernel) appearance of CT images."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DomainInfo"]


@dataclass(frozen=True)
class DomainInfo:
    """A kernel domain of the registry.

    Attributes:
        name: canonical domain name, e.g. ``"siemens_b30f"``.
        vendor: vendor key, e.g. ``"siemens"``.
        kernels: ConvolutionKernel aliases (matched ignoring case and surrounding whitespace).
        sharpness: ``"soft"`` or ``"sharp"``.
        mtf50_lp_cm: nominal MTF50 in line pairs per cm, or None when not set.
        description: one-line plain-language description.
        family: kernel family (e.g. ``"siemens_force"``, paper 001's set), or None.
        group: sharpness group within the family (``"smooth"``, ``"medium"``, ``"sharp"``), or None.
    """

    name: str
    vendor: str
    kernels: tuple[str, ...]
    sharpness: str
    mtf50_lp_cm: float | None = None
    description: str = ""
    family: str | None = None
    group: str | None = None

    @property
    def is_sharp(self) -> bool:
        return self.sharpness == "sharp"
