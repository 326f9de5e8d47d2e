"""The translator contract: the one slice-level call every harmonization method's network exposes.

A translator is an ``nn.Module`` with

* ``domains``: tuple of the kernel-domain names it translates between;
* ``spatial_multiple``: H and W must be multiples of it (2 ** the number of stride-2 layers; 1 for
  networks without downsampling);
* ``forward(x, source, target, condition=None)``: (B, 1, H, W) in **[-1, 1]** (HU window scaled) →
  (B, 1, H, W) in [-1, 1]; ``condition`` optionally holds tensors a method needs besides the image
  (style code, segmentation, MTF), by name;
* ``path(source, target)``: the one source → target mapping ``x -> y`` as a module (shares the
  weights; TorchScript-able where the method allows), for export.

:class:`~ctharmonize.inference.SliceHarmonizer` turns any translator into a volume-level harmonizer
(HU in, HU out). :class:`~ctharmonize.networks.MultipathGenerator` is a translator;
:class:`CycleGANPair` adapts two one-way generators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from ctharmonize.errors import ConfigError
from ctharmonize.networks.nets.domain_names import check_domain_names, check_path_domains

__all__ = ["CycleGANPair", "IdentityPath", "Translator", "check_translator"]


@runtime_checkable
class Translator(Protocol):
    """See the module docstring."""

    domains: tuple[str, ...]
    spatial_multiple: int

    def __call__(self, x: torch.Tensor, source: str, target: str,
                 condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor: ...

    def path(self, source: str, target: str) -> nn.Module: ...


def check_translator(module: object, where: object = None) -> nn.Module:
    """Return ``module`` if it is an ``nn.Module`` with the translator contract, else a one-line
    :class:`ConfigError` naming ``where`` (e.g. the bundle config) and what is missing."""
    missing = [a for a in ("domains", "spatial_multiple", "path") if not hasattr(module, a)]
    if not isinstance(module, nn.Module):
        missing.insert(0, "nn.Module")
    if missing:
        raise ConfigError(where, f"{type(module).__name__} is not a translator: it lacks {', '.join(missing)} "
                                 "(see docs/new_method.md)")
    multiple = module.spatial_multiple
    if not isinstance(multiple, int) or multiple < 1:
        raise ConfigError(where, f"{type(module).__name__}.spatial_multiple must be an int >= 1, got {multiple!r}")
    return module


class IdentityPath(nn.Module):
    """``x -> x``: the path of a translator from a domain to itself. TorchScript-able."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class CycleGANPair(nn.Module):
    """Two one-way generators as one translator: ``G_AB`` maps ``domains[0]`` → ``domains[1]``, ``G_BA`` back.

    Args:
        G_AB, G_BA: modules mapping (B, 1, H, W) in [-1, 1] to the same (e.g. ``ResnetGenerator``).
        domains: ``(a, b)``, the kernel domains of A and B.
        spatial_multiple: padding multiple (default: the generators' own ``spatial_multiple``, else 4).

    ``forward(x, source, target)`` runs the generator of that direction (identity when source ==
    target); ``condition`` is ignored. The state dict holds ``G_AB.*`` and ``G_BA.*``; a training
    checkpoint loads with ``checkpoint_networks = {"G_AB": "G_AB", "G_BA": "G_BA"}``.
    """

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module, domains: tuple[str, str] | list[str],  # noqa: N803
                 spatial_multiple: int | None = None):
        super().__init__()
        names = check_domain_names(domains)
        if len(names) != 2:
            raise ConfigError(None, f"a CycleGAN pair translates between two domains, got {list(names)}")
        self.G_AB = G_AB
        self.G_BA = G_BA
        self._domains = names
        if spatial_multiple is None:
            spatial_multiple = max(int(getattr(G_AB, "spatial_multiple", 4)), int(getattr(G_BA, "spatial_multiple", 4)))
        self.spatial_multiple = int(spatial_multiple)

    @property
    def domains(self) -> tuple[str, ...]:
        return self._domains

    def path(self, source: str, target: str) -> nn.Module:
        if check_path_domains(source, target, self.domains):
            return IdentityPath()
        return self.G_AB if source == self.domains[0] else self.G_BA

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.path(source, target)(x)
