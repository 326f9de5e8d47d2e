"""Convolutional Block Attention Module (Woo et al., ECCV 2018), used by the CVS-CT generator (paper 002)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CBAM"]


class CBAM(nn.Module):
    """Channel attention followed by spatial attention; shape (B, C, H, W) → same.

    Channel map: shared MLP (1×1 convs, C → C/reduction → C) on the spatial average- and max-pooled
    features, summed, sigmoid. Spatial map: ``kernel_size``×``kernel_size`` conv on the channel-wise
    mean and max (2 maps), sigmoid. Each map multiplies the features. Paper 002's text says
    "concatenated" and "softmax"; we follow the original CBAM (sum, sigmoid), which it cites.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1, bias=False)
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = torch.mean(x, dim=(2, 3), keepdim=True)
        mx = torch.amax(x, dim=(2, 3), keepdim=True)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        pooled = torch.cat([torch.mean(x, dim=1, keepdim=True), torch.amax(x, dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))
