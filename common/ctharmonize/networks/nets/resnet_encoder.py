"""Front of the CycleGAN ResNet generator; one per kernel domain in the multipath model."""

from __future__ import annotations

from monai.networks.utils import normal_init
from torch import nn

from ctharmonize.networks.blocks.conv_norm_act import conv_norm_act

__all__ = ["ResnetEncoder"]


class ResnetEncoder(nn.Sequential):
    """Image (B, in_channels, H, W) in [-1, 1] → features (B, ngf·2^n, H/2^n, W/2^n), n = ``n_downsampling``.

    Layers: reflection pad 3, 7×7 conv (in → ngf), norm, ReLU, then ``n_downsampling`` stride-2 3×3
    convs doubling the width (ngf → 2ngf → 4ngf), each with norm and ReLU. H and W must be multiples
    of 2^n for the decoder to restore the input size. Layer indices equal the reference
    ``ResNetEncoder.encoder`` (``1.weight`` is the 7×7 conv); the reference's first conv has no bias,
    which is irrelevant before InstanceNorm (load its checkpoints with a zero bias).
    """

    def __init__(self, in_channels: int = 1, ngf: int = 64, n_downsampling: int = 2, norm: str = "instance"):
        layers = conv_norm_act(in_channels, ngf, 7, norm=norm, act="relu", reflect_pad=3)
        for i in range(n_downsampling):
            mult = 2**i
            layers += conv_norm_act(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, norm=norm, act="relu")
        super().__init__(*layers)
        self.apply(normal_init)  # N(0, 0.02) conv weights, zero bias: pix2pix/CycleGAN init
        self.out_channels = ngf * 2**n_downsampling
