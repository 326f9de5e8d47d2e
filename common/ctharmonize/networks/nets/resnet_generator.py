"""Standard CycleGAN ResNet generator (plain CycleGAN baseline), built from the multipath pieces."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.nets.resnet_decoder import ResnetDecoder
from ctharmonize.networks.nets.resnet_encoder import ResnetEncoder
from ctharmonize.networks.nets.shared_latent import SharedLatent

__all__ = ["ResnetGenerator"]


class ResnetGenerator(nn.Module):
    """Image (B, in_channels, H, W) in [-1, 1] → image (B, out_channels, H, W) in [-1, 1].

    ``encoder`` (:class:`ResnetEncoder`) → ``latent`` (``n_blocks`` residual blocks) → ``decoder``
    (:class:`ResnetDecoder`): the resnet_9blocks generator of Zhu et al. 2017. H, W multiples of 4
    (``spatial_multiple``).
    """

    spatial_multiple: int = 4

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64, n_blocks: int = 9,
        norm: str = "instance", dropout: float = 0.0,
    ):
        super().__init__()
        self.encoder = ResnetEncoder(in_channels, ngf, n_downsampling=2, norm=norm)
        self.latent = SharedLatent(self.encoder.out_channels, n_blocks, norm=norm, dropout=dropout)
        self.decoder = ResnetDecoder(out_channels, ngf, n_upsampling=2, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.latent(self.encoder(x)))
