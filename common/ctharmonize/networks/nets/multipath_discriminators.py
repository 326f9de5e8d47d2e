"""One PatchGAN discriminator per target kernel domain for the multipath cycleGAN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctharmonize.networks.nets.domain_names import check_domain, check_domain_names
from ctharmonize.networks.nets.multipath_generator import DEFAULT_DOMAINS
from ctharmonize.networks.nets.patch_discriminator import PatchDiscriminator

__all__ = ["MultipathDiscriminators"]


class MultipathDiscriminators(nn.ModuleDict):
    """``{domain: PatchDiscriminator}``; ``forward(x, domain)``: image (B, 1, H, W) in [-1, 1] → logit map.

    Decision: discriminator ``D[d]`` belongs to TARGET domain ``d``. It compares real images of
    ``d`` with every image translated INTO ``d`` (from any source), as paper 000 §2 and Fig. 2
    describe ("a PatchGAN is used as a discriminator for the corresponding domain"). The authors'
    public code instead indexes discriminators by the path's source domain (e.g. ``netD_A`` judges
    B30f, BONE and STANDARD fakes against reals of those domains), so one discriminator there
    must model three different kernels; we do not repeat that.
    """

    def __init__(
        self, domains: Sequence[str] = DEFAULT_DOMAINS, ndf: int = 64, n_layers: int = 3, in_channels: int = 1,
        norm: str = "instance", init: str = "normal",
    ):
        names = check_domain_names(domains)
        super().__init__()
        self._config = {"in_channels": int(in_channels), "ndf": int(ndf), "n_layers": int(n_layers), "norm": norm,
                        "init": init}
        for name in names:
            self[name] = PatchDiscriminator(**self._config)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.keys())

    def forward(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        return self[check_domain(domain, self.domains, "discriminator domain")](x)

    def add_domain(self, name: str) -> None:
        """Add a freshly initialised discriminator for a new kernel domain."""
        (name,) = check_domain_names([name], existing=self.domains)
        disc = PatchDiscriminator(**self._config)
        ref = next(self.parameters(), None)
        self[name] = disc if ref is None else disc.to(device=ref.device, dtype=ref.dtype)

    def freeze_except(self, domains: Sequence[str] | str) -> list[nn.Parameter]:
        """Freeze every discriminator except ``domains``'; return the parameters left trainable."""
        keep = set(check_domain_names(domains))
        for name in keep:
            check_domain(name, self.domains)
        for name in self.domains:
            self[name].requires_grad_(name in keep)
        return [p for p in self.parameters() if p.requires_grad]
