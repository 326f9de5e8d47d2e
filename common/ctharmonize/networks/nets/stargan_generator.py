"""StarGAN v2 generator (paper 003): ResBlk encoder, AdaIN-ResBlk decoder driven by a style code."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.blocks.adain_resblock import AdainResBlk
from ctharmonize.networks.blocks.stargan_resblock import ResBlk
from ctharmonize.networks.nets.stargan_init import stargan_init
from ctharmonize.networks.nets.stargan_trunk import StarGANTrunk, stargan_sizes

__all__ = ["StarGANGenerator"]


class StarGANGenerator(nn.Module):
    """``forward(x, s)``: x (B, in_channels, H, W) in [-1, 1], s (B, style_dim) → (B, out_channels, H, W).

    ``encoder`` (:class:`StarGANTrunk`, instance-normalized: ``from_rgb`` conv, ``n_down``
    downsampling ResBlks, widths dim_in·2^i capped at ``max_conv_dim``) → ``bottleneck``
    (``n_bottleneck`` ResBlks) → ``decoder`` (``n_bottleneck`` :class:`AdainResBlk` at the bottleneck
    width, then ``n_down`` upsampling ones mirroring the encoder's widths) → ``to_rgb``
    (``InstanceNorm2d(dim_in, affine=True)``, LeakyReLU(0.2), conv1×1 dim_in → out_channels).
    Every decoder block is modulated by s through AdaIN; nothing else sees s.

    Sizes (StarGAN v2, Choi et al. 2020): ``img_size`` only sets the defaults of ``dim_in``
    (2^14 / img_size) and ``n_down`` (log2(img_size) − 4, a 16×16 bottleneck); without it the 256²
    values, dim_in 64, n_down 4 (64 → 128 → 256 → 512 → 512). ``img_size=512`` (paper 003's slices)
    gives dim_in 32, n_down 5. The network is fully convolutional: H and W must be multiples of
    ``spatial_multiple`` = 2^n_down (pad slices to it at inference), and H / 2^n_down ≥ 2 (instance norm).

    Output range: StarGAN v2 has no output activation (``tanh=False``, the default), so the output is
    not bounded; inference clips it to [-1, 1]. ``tanh=True`` adds a final Tanh. The high-pass /
    face-mask branch of StarGAN v2 (``w_hpf`` > 0, for faces) is not implemented; CT uses
    ``w_hpf = 0``. ``residual=True`` (not StarGAN v2's) returns ``x + to_rgb(...)`` with the last
    convolution zero-initialised, so G starts as the identity: the instance-normalized encoder discards
    a slice's absolute intensity, which a plain G must then rebuild from the style alone, and CT
    values (HU) are the measurement. ``init``: ``"kaiming"`` (He normal, zero bias; StarGAN v2's) or ``"pytorch"``.

    Parameters (1 channel, style_dim 64; neither paper states counts): 33,891,713 at the defaults
    (dim_in 64, max_conv_dim 512, n_down 4); 33,963,457 at img_size 512 (dim_in 32, n_down 5);
    2,229,089 at dim_in 16, max_conv_dim 128, n_down 4 (CPU demo). TorchScript-able.
    """

    def __init__(
        self,
        img_size: int | None = None,
        style_dim: int = 64,
        max_conv_dim: int = 512,
        dim_in: int | None = None,
        n_down: int | None = None,
        n_bottleneck: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        from_rgb_kernel: int = 3,
        tanh: bool = False,
        init: str = "kaiming",
        residual: bool = False,
    ):
        super().__init__()
        if residual and (in_channels != out_channels or tanh):
            raise ValueError("residual=True needs in_channels == out_channels and tanh=False")
        dim_in, n_down = stargan_sizes(img_size, dim_in, n_down, bottom_log2=4)
        if n_bottleneck < 0:
            raise ValueError(f"n_bottleneck must be >= 0, got {n_bottleneck}")
        self.style_dim = style_dim
        self.encoder = StarGANTrunk(in_channels, dim_in, max_conv_dim, n_down, normalize=True,
                                    from_rgb_kernel=from_rgb_kernel)
        widths = self.encoder.channels
        bottom = widths[-1]
        self.bottleneck = nn.Sequential(*[ResBlk(bottom, bottom, normalize=True) for _ in range(n_bottleneck)])
        decoder = [AdainResBlk(bottom, bottom, style_dim) for _ in range(n_bottleneck)]
        decoder += [AdainResBlk(widths[i], widths[i - 1], style_dim, upsample=True) for i in range(n_down, 0, -1)]
        self.decoder = nn.ModuleList(decoder)
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(dim_in, out_channels, 1)
        )
        self.out_act: nn.Module = nn.Tanh() if tanh else nn.Identity()
        self.spatial_multiple = 2**n_down  # an instance attribute, so that a scripted module keeps it
        stargan_init(self, init)
        self.residual = bool(residual)
        if self.residual:  # the residual starts at 0: G(x, s) = x at initialisation
            nn.init.zeros_(self.to_rgb[2].weight)
            nn.init.zeros_(self.to_rgb[2].bias)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        m = self.spatial_multiple
        if x.shape[-2] % m != 0 or x.shape[-1] % m != 0:
            raise ValueError(f"H and W must be multiples of spatial_multiple = {m}, got {list(x.shape[-2:])}")
        h = self.bottleneck(self.encoder(x))
        for block in self.decoder:
            h = block(h, s)
        y = self.to_rgb(h)
        if self.residual:
            return x + y
        return self.out_act(y)
