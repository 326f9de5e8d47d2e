"""Multipath cycleGAN generator (paper 000; Krishnan et al. 2024/2025): per-domain encoders/decoders, one shared latent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ctharmonize.networks.nets.domain_names import check_domain, check_domain_names
from ctharmonize.networks.nets.multipath_path import MultipathPath
from ctharmonize.networks.nets.resnet_decoder import ResnetDecoder
from ctharmonize.networks.nets.resnet_encoder import ResnetEncoder
from ctharmonize.networks.nets.shared_latent import SharedLatent

__all__ = ["DEFAULT_DOMAINS", "MultipathGenerator"]

DEFAULT_DOMAINS = ("siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard")


class MultipathGenerator(nn.Module):
    """ResNet generator split into ``encoders[domain]`` → shared ``latent`` → ``decoders[domain]``.

    ``forward(x, source, target)``: image (B, in_channels, H, W) in [-1, 1] → (B, in_channels, H, W)
    in [-1, 1]; H, W multiples of ``spatial_multiple`` = 2^n_downsampling (4 for the paper). Every source→target pair (including source == target) is a path;
    :meth:`path` returns it as a scriptable module for export.

    Args:
        domains: kernel-domain names, e.g. the paper's four NLST kernels (default).
        ngf: width of the first conv (paper: 64); the latent has ngf·2^n_downsampling channels.
        n_blocks: residual blocks in the shared latent (paper: 9, all shared).
        in_channels: image channels (1 for CT).
        norm: ``"instance"`` (paper), ``"batch"`` or ``"none"``.
        dropout: residual-block dropout (paper: none).
        residual: not in the paper. Output = clamp(x + decoder(...), -1, 1) with the last decoder conv
            zero-initialised, so every path starts as the identity (short CPU trainings keep anatomy).
        n_downsampling: stride-2 convs per encoder (paper: 2, latent at H/4). 1 puts the shared
            latent at H/2, where a pixel-level kernel change is learnt much faster (CPU demo; model card).

    All arguments are plain JSON types so a bundle config can build it. The generator itself is not
    TorchScript-able (domains are runtime strings); export ``path(source, target)`` instead.
    """

    def __init__(
        self,
        domains: Sequence[str] = DEFAULT_DOMAINS,
        ngf: int = 64,
        n_blocks: int = 9,
        in_channels: int = 1,
        norm: str = "instance",
        dropout: float = 0.0,
        residual: bool = False,
        n_downsampling: int = 2,
    ):
        super().__init__()
        names = check_domain_names(domains)
        self.ngf, self.in_channels, self.norm = int(ngf), int(in_channels), norm
        self.residual = bool(residual)
        self.n_downsampling = int(n_downsampling)
        if self.n_downsampling < 0:
            raise ValueError(f"n_downsampling must be >= 0, got {n_downsampling}")
        self.encoders = nn.ModuleDict()
        self.decoders = nn.ModuleDict()
        self.latent = SharedLatent(self.ngf * 2**self.n_downsampling, n_blocks, norm=norm, dropout=dropout)
        for name in names:
            self._build(name)

    def _build(self, name: str) -> None:
        self.encoders[name] = ResnetEncoder(self.in_channels, self.ngf, n_downsampling=self.n_downsampling, norm=self.norm)
        self.decoders[name] = ResnetDecoder(self.in_channels, self.ngf, n_upsampling=self.n_downsampling, norm=self.norm)
        if self.residual:  # start every path as the identity: the decoder learns a correction
            last = [m for m in self.decoders[name].modules() if isinstance(m, nn.Conv2d)][-1]
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)

    @property
    def domains(self) -> tuple[str, ...]:
        """Domain names in construction/addition order."""
        return tuple(self.encoders.keys())

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Image (B, C, H, W) in [-1, 1] → latent (B, ngf·2^n, H/2^n, W/2^n), n = n_downsampling, after the shared blocks."""
        return self.latent(self.encoders[check_domain(domain, self.domains, "source domain")](x))

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """Latent (B, ngf·2^n, h, w) → image (B, C, 2^n·h, 2^n·w) in [-1, 1] in ``domain``'s style."""
        return self.decoders[check_domain(domain, self.domains, "target domain")](z)

    @property
    def spatial_multiple(self) -> int:
        """H and W must be multiples of this: 2 ** n_downsampling (the translator contract)."""
        return 2**self.n_downsampling

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Translate (B, C, H, W) in [-1, 1] from ``source`` to ``target``; ``condition`` is unused."""
        y = self.decode(self.encode(x, source), target)
        if self.residual:
            y = torch.clamp(x + y, -1.0, 1.0)
        return y

    def path(self, source: str, target: str) -> MultipathPath:
        """The source→target path as a module sharing this generator's weights (scriptable)."""
        check_domain(source, self.domains, "source domain")
        check_domain(target, self.domains, "target domain")
        return MultipathPath(self.encoders[source], self.latent, self.decoders[target], source, target, self.residual,
                             self.spatial_multiple)

    def add_domain(self, name: str) -> None:
        """Add a freshly initialised encoder and decoder for a new kernel (stage two of Krishnan et al. 2025)."""
        (name,) = check_domain_names([name], existing=self.domains)
        self._build(name)
        ref = next(self.latent.parameters(), None)
        if ref is not None:
            self.encoders[name].to(device=ref.device, dtype=ref.dtype)
            self.decoders[name].to(device=ref.device, dtype=ref.dtype)

    def freeze_except(self, domains: Sequence[str] | str) -> list[nn.Parameter]:
        """Freeze the shared latent and every other domain; return the parameters left trainable.

        Only ``requires_grad`` changes; with ``norm="batch"`` also put frozen modules in eval mode
        so their running statistics stay fixed.
        """
        keep = set(check_domain_names(domains))
        for name in keep:
            check_domain(name, self.domains)
        self.latent.requires_grad_(False)
        for name in self.domains:
            self.encoders[name].requires_grad_(name in keep)
            self.decoders[name].requires_grad_(name in keep)
        return [p for p in self.parameters() if p.requires_grad]
