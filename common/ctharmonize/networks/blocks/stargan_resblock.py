"""Pre-activation residual block of the StarGAN v2 encoder, style encoder and discriminator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResBlk"]


class ResBlk(nn.Module):
    """``(shortcut(x) + residual(x)) / √2``; (B, dim_in, H, W) → (B, dim_out, H/2, W/2) with
    ``downsample`` (2×2 average pooling, floor), else (B, dim_out, H, W).

    residual: ``[IN] → LReLU(0.2) → conv3×3 (dim_in→dim_in) → [avgpool 2] → [IN] → LReLU(0.2) →
    conv3×3 (dim_in→dim_out)``; the INs (``normalize=True``, the generator's encoder) are
    ``InstanceNorm2d(dim_in, affine=True)``, without them (style encoder, discriminator) it is plain.
    shortcut: ``[conv1×1 dim_in→dim_out, no bias] → [avgpool 2]``: the 1×1 conv is learned only when
    the channel count changes, identity otherwise. The 1/√2 keeps the variance of the sum near that
    of its inputs (StarGAN v2, Choi et al. 2020). TorchScript-able.
    """

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False,
                 negative_slope: float = 0.2):
        super().__init__()
        self.downsample = downsample
        self.negative_slope = negative_slope
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.norm1: nn.Module = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.norm2: nn.Module = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.shortcut: nn.Module = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.leaky_relu(self.norm1(x), self.negative_slope))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return self.conv2(F.leaky_relu(self.norm2(x), self.negative_slope))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shortcut(x)
        if self.downsample:
            skip = F.avg_pool2d(skip, 2)
        return (skip + self.residual(x)) / math.sqrt(2.0)
