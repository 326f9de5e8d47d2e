"""Residual blocks forming the latent space shared by all paths of the multipath generator."""

from __future__ import annotations

from monai.networks.utils import normal_init
from torch import nn

from ctharmonize.networks.blocks.resnet_block import ResnetBlock

__all__ = ["SharedLatent"]


class SharedLatent(nn.Sequential):
    """``n_blocks`` :class:`ResnetBlock` in sequence; features (B, C, h, w) → same shape.

    In the multipath cycleGAN (paper 000 §2; Krishnan et al. 2025; reference code
    ``ResBlocklatent(n_blocks=9)``) ALL nine residual blocks of the CycleGAN ResNet generator form
    the latent space: one instance shared by every encoder/decoder pair, none kept per domain.
    """

    def __init__(
        self, channels: int = 256, n_blocks: int = 9, norm: str = "instance", dropout: float = 0.0,
        padding: str = "reflect",
    ):
        super().__init__(*[ResnetBlock(channels, norm=norm, dropout=dropout, padding=padding) for _ in range(n_blocks)])
        self.apply(normal_init)  # N(0, 0.02) conv weights, zero bias: pix2pix/CycleGAN init
        self.channels = channels
