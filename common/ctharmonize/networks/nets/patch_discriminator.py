"""PatchGAN discriminator (pix2pix/CycleGAN ``NLayerDiscriminator``)."""

from __future__ import annotations

from monai.networks.utils import normal_init
from torch import nn

from ctharmonize.networks.blocks.conv_norm_act import conv_norm_act

__all__ = ["PatchDiscriminator", "patch_receptive_field"]


def patch_receptive_field(n_layers: int = 3) -> int:
    """Receptive field (pixels) of one output of :class:`PatchDiscriminator`: 70 for ``n_layers=3``.

    All convs are 4×4: ``n_layers`` with stride 2, then two with stride 1.
    """
    rf = 1
    for stride in reversed([2] * n_layers + [1, 1]):
        rf = (rf - 1) * stride + 4
    return rf


class PatchDiscriminator(nn.Sequential):
    """Image (B, in_channels, H, W) in [-1, 1] → real/fake logit map (B, 1, ~H/2^n - 2, ~W/2^n - 2).

    4×4 convs: the first (in → ndf, stride 2) without norm, then ``n_layers - 1`` stride-2 convs
    doubling the width (capped at 8·ndf) and one stride-1 conv, each with norm and LeakyReLU(0.2),
    then a stride-1 conv to 1 channel (no activation: LSGAN/WGAN use raw scores). With
    ``n_layers=3`` each output pixel sees a 70×70 input patch. Layer indices equal pix2pix's
    ``NLayerDiscriminator.model``.

    ``init``: ``"normal"`` (pix2pix N(0, 0.02), the paper's) or ``"pytorch"`` (nn.Conv2d's default
    kaiming-uniform). On CT kernel pairs the N(0, 0.02) discriminator sits at chance for ~450 Adam
    steps before it sees the noise texture; the default init separates B30f from B50f within ~200.
    """

    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 init: str = "normal"):
        layers = conv_norm_act(in_channels, ndf, 4, stride=2, padding=1, norm="none", act="leakyrelu")
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += conv_norm_act(ndf * prev, ndf * mult, 4, stride=stride, padding=1, norm=norm, act="leakyrelu")
        layers += conv_norm_act(ndf * mult, 1, 4, stride=1, padding=1, norm="none", act="none", bias=True)
        super().__init__(*layers)
        if init == "normal":
            self.apply(normal_init)  # N(0, 0.02) conv weights, zero bias: pix2pix/CycleGAN init
        elif init != "pytorch":  # "pytorch": keep nn.Conv2d's default kaiming-uniform init
            raise ValueError(f"init must be 'normal' or 'pytorch', got {init!r}")
