"""CVS-CT generator (paper 002): a constant-resolution conv stack with CBAM attention blocks."""

from __future__ import annotations

from monai.networks.utils import normal_init
from torch import nn

from ctharmonize.networks.blocks.cbam import CBAM
from ctharmonize.networks.blocks.norm import conv_bias, norm_layer

__all__ = ["CVSCTGenerator", "same_padding"]

PADDING_MODES = ("zeros", "reflect")


def same_padding(kernel_size: int, padding_mode: str = "zeros") -> nn.Module:
    """Pad layer that keeps H×W through a stride-1 ``kernel_size`` conv: ``(k-1)//2`` on the left/top
    and the rest on the right/bottom (4×4: ``(1, 2, 1, 2)``, as PyTorch's and TensorFlow's ``'same'``)."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
    before = (kernel_size - 1) // 2
    pad = (before, kernel_size - 1 - before, before, kernel_size - 1 - before)
    return nn.ZeroPad2d(pad) if padding_mode == "zeros" else nn.ReflectionPad2d(pad)


class CVSCTGenerator(nn.Sequential):
    """Image (B, in_channels, H, W) in [-1, 1] → image (B, out_channels, H, W) in [-1, 1], any H, W.

    ``n_convs`` ``kernel_size``×``kernel_size`` stride-1 convolutions, ``features`` filters each (the
    last: ``out_channels``), no down- or up-sampling. Each conv but the last is followed by
    ``[norm]`` and LeakyReLU(0.2); the last by Tanh. A :class:`CBAM` (``cbam_reduction``,
    ``cbam_kernel_size``) follows every second conv except the last one: after convs 2, 4, 6 of the
    paper's 7, which gives its "seven convolutional layers and three CBAM blocks". (The paper's
    "except the last three layers" read as "conv 6, CBAM, conv 7": the output conv gets none; a
    literal reading, no CBAM among convs 5-7, would leave two blocks.)

    Each conv is preceded by an asymmetric 'same' pad (:func:`same_padding`; 4×4: ``(1, 2, 1, 2)``,
    zeros by default, ``padding_mode="reflect"`` needs H, W ≥ 3), so the output is exactly H×W
    (``spatial_multiple = 1``). ``norm``: ``"none"`` (default, the paper names none) or
    ``"instance"``/``"batch"``. ``init`` (the paper says only "random weights"): ``"normal"`` (N(0, 0.02)
    conv weights, CBAM's too, zero bias: CycleGAN's, the spec's choice), ``"kaiming"`` (He normal for
    LeakyReLU(0.2) on the stack's convs, zero bias) or ``"pytorch"`` (nn.Conv2d's default). Without
    normalization N(0, 0.02) shrinks the signal through the stack (output std ~4e-6 at init on
    [-1, 1] noise, vs ~6e-3 with ``"kaiming"``); Adam's scale-free steps still train it. TorchScript-able.
    """

    def __init__(
        self,
        in_channels: int = 1,
        features: int = 64,
        kernel_size: int = 4,
        n_convs: int = 7,
        cbam_reduction: int = 16,
        out_channels: int = 1,
        cbam_kernel_size: int = 7,
        norm: str = "none",
        padding_mode: str = "zeros",
        init: str = "normal",
    ):
        if n_convs < 2:
            raise ValueError(f"n_convs must be >= 2, got {n_convs}")
        if init not in ("normal", "kaiming", "pytorch"):
            raise ValueError(f"init must be 'normal', 'kaiming' or 'pytorch', got {init!r}")
        layers: list[nn.Module] = []
        for i in range(1, n_convs + 1):
            last = i == n_convs
            layers.append(same_padding(kernel_size, padding_mode))
            layers.append(nn.Conv2d(in_channels if i == 1 else features, out_channels if last else features,
                                    kernel_size, bias=True if last else conv_bias(norm)))
            if last:
                layers.append(nn.Tanh())
                break
            if norm != "none":
                layers.append(norm_layer(norm, features))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if i % 2 == 0:
                layers.append(CBAM(features, cbam_reduction, cbam_kernel_size))
        super().__init__(*layers)
        self.spatial_multiple = 1  # an instance attribute, so that a scripted module keeps it
        if init == "normal":
            self.apply(normal_init)  # N(0, 0.02) conv weights (CBAM's too), zero bias
        elif init == "kaiming":
            for m in self.children():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
