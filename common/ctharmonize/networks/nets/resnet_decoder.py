"""Back of the CycleGAN ResNet generator; one per kernel domain in the multipath model."""

from __future__ import annotations

from monai.networks.utils import normal_init
from torch import nn

from ctharmonize.networks.blocks.conv_norm_act import conv_norm_act, deconv_norm_act

__all__ = ["ResnetDecoder"]


class ResnetDecoder(nn.Sequential):
    """Features (B, ngf·2^n, h, w) → image (B, out_channels, h·2^n, w·2^n) in [-1, 1] (tanh), n = ``n_upsampling``.

    Layers: ``n_upsampling`` transposed 3×3 convs (stride 2, padding 1, output_padding 1) halving the
    width (4ngf → 2ngf → ngf), each with norm and ReLU, then reflection pad 3, 7×7 conv (ngf → out),
    tanh. Layer indices equal the reference ``ResNetDecoder.decoder``.
    """

    def __init__(self, out_channels: int = 1, ngf: int = 64, n_upsampling: int = 2, norm: str = "instance"):
        layers: list[nn.Module] = []
        for i in range(n_upsampling):
            mult = 2 ** (n_upsampling - i)
            layers += deconv_norm_act(ngf * mult, ngf * mult // 2, norm=norm, act="relu")
        layers += conv_norm_act(ngf, out_channels, 7, norm="none", act="tanh", reflect_pad=3, bias=True)
        super().__init__(*layers)
        self.apply(normal_init)  # N(0, 0.02) conv weights, zero bias: pix2pix/CycleGAN init
        self.in_channels = ngf * 2**n_upsampling
