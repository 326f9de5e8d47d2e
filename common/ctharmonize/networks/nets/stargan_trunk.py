"""Downsampling ResBlk stack shared by the StarGAN v2 generator encoder, style encoder and discriminator."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ctharmonize.networks.blocks.stargan_resblock import ResBlk

__all__ = ["StarGANTrunk", "stargan_sizes"]


def stargan_sizes(img_size: int | None, dim_in: int | None, n_down: int | None, bottom_log2: int) -> tuple[int, int]:
    """``(dim_in, n_down)`` as StarGAN v2 derives them from the image size, explicit values winning.

    With ``img_size`` (a power of two ≥ 2^bottom_log2): ``dim_in = 2^14 // img_size`` (64 at 256², 32
    at 512²) and ``n_down = log2(img_size) − bottom_log2``, so that the last map is 2^bottom_log2
    pixels wide (generator: 4, a 16×16 bottleneck; style encoder and discriminator: 2, 4×4). Without
    it, the 256² values: ``dim_in = 64``, ``n_down = 8 − bottom_log2``.
    """
    if img_size is not None:
        if img_size < 2**bottom_log2 or img_size & (img_size - 1):
            raise ValueError(f"img_size must be a power of two >= {2**bottom_log2}, got {img_size}")
        log2 = img_size.bit_length() - 1
        dim_in = 2**14 // img_size if dim_in is None else dim_in
        n_down = log2 - bottom_log2 if n_down is None else n_down
    dim_in = 64 if dim_in is None else dim_in
    n_down = 8 - bottom_log2 if n_down is None else n_down
    if dim_in < 1 or n_down < 0:
        raise ValueError(f"need dim_in >= 1 and n_down >= 0, got {dim_in}, {n_down}")
    return dim_in, n_down


class StarGANTrunk(nn.Sequential):
    """Image (B, in_channels, H, W) → features (B, out_channels, H / 2^n_down, W / 2^n_down) (floor).

    ``from_rgb``: conv ``from_rgb_kernel``×``from_rgb_kernel`` (same padding) in_channels → dim_in,
    then ``down1`` … ``down{n_down}``: :class:`ResBlk` with 2×2 average-pool downsampling, widths
    doubling from dim_in up to ``max_conv_dim`` (``channels`` lists them: ``[dim_in, …, out_channels]``).
    ``normalize``: the ResBlks' instance norms (generator encoder: on; style encoder, discriminator: off).

    ``from_rgb_kernel`` is 3 by default, as in the StarGAN v2 code that paper 003 ran; the StarGAN v2
    paper's tables draw a 1×1 conv (``from_rgb_kernel=1``), which on a 1-channel CT slice only makes
    ``dim_in`` scaled copies of x, and the first instance norm reduces those to ±IN(x).
    """

    def __init__(self, in_channels: int = 1, dim_in: int = 64, max_conv_dim: int = 512, n_down: int = 4,
                 normalize: bool = False, from_rgb_kernel: int = 3):
        if from_rgb_kernel < 1 or from_rgb_kernel % 2 == 0:
            raise ValueError(f"from_rgb_kernel must be odd and >= 1, got {from_rgb_kernel}")
        if max_conv_dim < 1:
            raise ValueError(f"max_conv_dim must be >= 1, got {max_conv_dim}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["from_rgb"] = nn.Conv2d(in_channels, dim_in, from_rgb_kernel, padding=from_rgb_kernel // 2)
        channels = [dim_in]
        for i in range(n_down):
            out = min(channels[-1] * 2, max_conv_dim)
            layers[f"down{i + 1}"] = ResBlk(channels[-1], out, normalize=normalize, downsample=True)
            channels.append(out)
        super().__init__(layers)
        self.channels: list[int] = channels
        self.out_channels = channels[-1]
        self.n_down = n_down
