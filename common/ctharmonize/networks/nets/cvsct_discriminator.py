"""CVS-CT discriminator (paper 002): a 4×4 PatchGAN with seven hidden conv layers and a sigmoid output."""

from __future__ import annotations

from monai.networks.utils import normal_init
from torch import nn

from ctharmonize.networks.blocks.conv_norm_act import conv_norm_act

__all__ = ["CVSCTDiscriminator", "cvsct_discriminator_output_size"]


def cvsct_discriminator_output_size(size: int, n_hidden: int = 7, n_downsampling: int = 3) -> int:
    """Output length of :class:`CVSCTDiscriminator` along an input axis of ``size`` pixels (4×4 convs,
    padding 1: ``n_downsampling`` stride-2 layers, then ``n_hidden - n_downsampling`` + 1 stride-1 layers,
    each of which removes one pixel). 80 → 5 with the defaults; ≤ 0 means the input is too small."""
    for i in range(n_hidden + 1):
        stride = 2 if i < n_downsampling else 1
        size = (size + 2 - 4) // stride + 1
    return size


class CVSCTDiscriminator(nn.Sequential):
    """Image (B, in_channels, H, W) in [-1, 1] → real-probability map (B, 1, h, w) in (0, 1).

    ``n_hidden`` hidden 4×4 convs (padding 1), each with LeakyReLU(0.2): the first ``n_downsampling``
    with stride 2, the rest stride 1; widths ``ndf · min(2^i, max_mult)`` (paper defaults: 64 s2,
    128 s2, 256 s2, 512 s1 ×4, the pix2pix [10] PatchGAN deepened to the paper's "seven hidden
    layer[s]"); ``norm`` on all but the first. Then a 4×4 stride-1 conv to 1 channel and a sigmoid
    (the paper's; ``sigmoid=False`` returns raw scores for the ``"vanilla"``/``"wgan-gp"`` objectives,
    which expect logits). h, w: :func:`cvsct_discriminator_output_size` (80×80 → 5×5; H, W ≥ 48).
    ``init``: ``"normal"`` (N(0, 0.02), pix2pix) or ``"pytorch"``. TorchScript-able.
    """

    def __init__(
        self,
        in_channels: int = 1,
        ndf: int = 64,
        n_hidden: int = 7,
        n_downsampling: int = 3,
        max_mult: int = 8,
        norm: str = "instance",
        sigmoid: bool = True,
        init: str = "normal",
    ):
        if not 0 <= n_downsampling <= n_hidden or n_hidden < 1:
            raise ValueError(f"need 1 <= n_hidden and 0 <= n_downsampling <= n_hidden, got {n_hidden}, {n_downsampling}")
        if init not in ("normal", "pytorch"):
            raise ValueError(f"init must be 'normal' or 'pytorch', got {init!r}")
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(n_hidden):
            width = ndf * min(2**i, max_mult)
            stride = 2 if i < n_downsampling else 1
            layers += conv_norm_act(channels, width, 4, stride=stride, padding=1, norm="none" if i == 0 else norm,
                                    act="leakyrelu")
            channels = width
        layers += conv_norm_act(channels, 1, 4, stride=1, padding=1, norm="none", act="none", bias=True)
        if sigmoid:
            layers.append(nn.Sigmoid())
        super().__init__(*layers)
        if init == "normal":
            self.apply(normal_init)
