"""Style-modulated pre-activation residual block of the StarGAN v2 decoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.networks.blocks.adain import AdaIN

__all__ = ["AdainResBlk"]


class AdainResBlk(nn.Module):
    """``(shortcut(x) + residual(x, s)) / √2``; x (B, dim_in, H, W), s (B, style_dim) →
    (B, dim_out, 2H, 2W) with ``upsample`` (nearest ×2), else (B, dim_out, H, W).

    residual: ``AdaIN(dim_in) → LReLU(0.2) → [nearest ×2] → conv3×3 (dim_in→dim_out) →
    AdaIN(dim_out) → LReLU(0.2) → conv3×3 (dim_out→dim_out)``, both AdaINs driven by s.
    shortcut: ``[nearest ×2] → [conv1×1 dim_in→dim_out, no bias]``, the conv only when the channel
    count changes. StarGAN v2's high-pass (``w_hpf``, face-landmark) variant, which drops the
    shortcut, is not implemented: it is for faces, and CT uses ``w_hpf = 0``. TorchScript-able.
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int = 64, upsample: bool = False,
                 negative_slope: float = 0.2):
        super().__init__()
        self.upsample = upsample
        self.negative_slope = negative_slope
        self.norm1 = AdaIN(style_dim, dim_in)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.shortcut: nn.Module = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), self.negative_slope)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.conv1(x)
        return self.conv2(F.leaky_relu(self.norm2(x, s), self.negative_slope))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        skip = x
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2.0, mode="nearest")
        return (self.shortcut(skip) + self.residual(x, s)) / math.sqrt(2.0)
