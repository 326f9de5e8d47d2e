"""StarGAN v2 multi-task discriminator (paper 003): one real/fake logit per domain."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.nets.domain_select import select_domain
from ctharmonize.networks.nets.stargan_init import stargan_init
from ctharmonize.networks.nets.stargan_trunk import StarGANTrunk, stargan_sizes

__all__ = ["MultiTaskDiscriminator"]


class MultiTaskDiscriminator(nn.Module):
    """``forward(x, y)``: x (B, in_channels, H, W) in [-1, 1], y (B,) long domain indices → (B,) logits.

    ``trunk`` (:class:`StarGANTrunk` without normalization, as the style encoder's) → ``head``
    (LeakyReLU(0.2), conv1×1 C → C, LeakyReLU(0.2), conv1×1 C → num_domains) → global average pooling.
    :meth:`logits` returns (B, num_domains), one real/fake logit per domain (raw, for
    ``BCEWithLogits`` and the R1 penalty); ``forward`` each sample's own domain's
    (:func:`select_domain`). Output k only learns "real image of domain k" vs "fake translated to k".

    As in :class:`StyleEncoder`, StarGAN v2's 4×4 valid conv on the 4×4 map is replaced by a 1×1 conv
    and the per-domain maps are averaged over positions, so any H, W ≥ 2^n_down works. Defaults:
    dim_in 64, max_conv_dim 512, n_down 6 (StarGAN v2 at 256²; ``img_size`` sets them as in
    :func:`stargan_sizes`). ``init``: ``"kaiming"`` (StarGAN v2's) or ``"pytorch"``.

    Parameters (1 channel, 3 domains): 16,919,491 at the defaults, 16,948,963 at img_size 512,
    1,058,803 at dim_in 16, max_conv_dim 128. TorchScript-able; twice differentiable (R1).
    """

    def __init__(
        self,
        img_size: int | None = None,
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
        self.num_domains = num_domains
        self.trunk = StarGANTrunk(in_channels, dim_in, max_conv_dim, n_down, normalize=False,
                                  from_rgb_kernel=from_rgb_kernel)
        c = self.trunk.out_channels
        self.head = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Conv2d(c, c, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, num_domains, 1)
        )
        stargan_init(self, init)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, H, W) → every domain's real/fake logit, (B, num_domains)."""
        return torch.mean(self.head(self.trunk(x)), dim=(2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return select_domain(self.logits(x), y)
