"""StarGAN v2 style encoder (paper 003): image and its domain → style code."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.nets.domain_select import select_domain
from ctharmonize.networks.nets.stargan_init import stargan_init
from ctharmonize.networks.nets.stargan_trunk import StarGANTrunk, stargan_sizes

__all__ = ["StyleEncoder"]


class StyleEncoder(nn.Module):
    """``forward(x, y)``: x (B, in_channels, H, W) in [-1, 1], y (B,) long domain indices → style (B, style_dim).

    ``trunk`` (:class:`StarGANTrunk` without normalization: ``from_rgb`` conv, ``n_down``
    downsampling ResBlks, widths dim_in·2^i capped at ``max_conv_dim``) → ``pool`` (LeakyReLU(0.2),
    conv1×1 C → C, LeakyReLU(0.2), global average pooling) → one ``Linear(C, style_dim)`` head per
    domain; :meth:`styles` returns all heads (B, num_domains, style_dim), ``forward`` each sample's own
    (:func:`select_domain`).

    Pooling: StarGAN v2 ends the trunk at 4×4 (n_down = log2(img_size) − 2) and applies a 4×4 valid
    conv, which ties the network to one input size. Here that conv is a 1×1 conv followed by
    adaptive average pooling to 1×1, so any crop with H, W ≥ 2^n_down works and the code is an
    average over positions (a texture statistic, not tied to where in the slice it is measured).
    Defaults as in StarGAN v2 at 256² (``img_size`` sets them as in :func:`stargan_sizes`): dim_in 64,
    max_conv_dim 512, n_down 6 (inputs ≥ 64 px). ``init``: ``"kaiming"`` (StarGAN v2's) or ``"pytorch"``.

    Parameters (1 channel, style_dim 64, 3 domains): 17,016,448 at the defaults (the 4×4 conv would add
    3,932,160), 17,045,920 at img_size 512, 1,083,184 at dim_in 16, max_conv_dim 128. TorchScript-able.
    """

    def __init__(
        self,
        img_size: int | None = None,
        style_dim: int = 64,
        num_domains: int = 3,
        dim_in: int | None = None,
        max_conv_dim: int = 512,
        n_down: int | None = None,
        in_channels: int = 1,
        from_rgb_kernel: int = 3,
        init: str = "kaiming",
    ):
        super().__init__()
        if num_domains < 1:
            raise ValueError(f"num_domains must be >= 1, got {num_domains}")
        dim_in, n_down = stargan_sizes(img_size, dim_in, n_down, bottom_log2=2)
        self.style_dim = style_dim
        self.num_domains = num_domains
        self.trunk = StarGANTrunk(in_channels, dim_in, max_conv_dim, n_down, normalize=False,
                                  from_rgb_kernel=from_rgb_kernel)
        c = self.trunk.out_channels
        self.pool = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Conv2d(c, c, 1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.heads = nn.ModuleList(nn.Linear(c, style_dim) for _ in range(num_domains))
        stargan_init(self, init)

    def styles(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, H, W) → every domain's style, (B, num_domains, style_dim)."""
        h = self.pool(self.trunk(x))
        out: list[torch.Tensor] = []
        for head in self.heads:
            out.append(head(h))
        return torch.stack(out, dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return select_domain(self.styles(x), y)
