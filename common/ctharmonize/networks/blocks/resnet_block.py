"""CycleGAN residual block."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.blocks.conv_norm_act import conv_norm_act

__all__ = ["ResnetBlock"]


class ResnetBlock(nn.Module):
    """``x + [pad, conv3×3, norm, ReLU, (dropout), pad, conv3×3, norm](x)``; shape (B, C, H, W) → same.

    Args:
        channels: feature channels C.
        norm: ``"instance"`` (default), ``"batch"`` or ``"none"``.
        dropout: dropout probability after the first ReLU (0 = none; pix2pix uses 0.5 when enabled).
        padding: ``"reflect"`` (default, reflection pad 1) or ``"zeros"`` (conv zero padding 1).

    The inner ``conv_block`` has the same layer indices as pix2pix/CycleGAN's ``ResnetBlock``.
    """

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0, padding: str = "reflect"):
        super().__init__()
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"unknown padding {padding!r}; expected 'reflect' or 'zeros'")
        pad, reflect = (0, 1) if padding == "reflect" else (1, 0)
        layers = conv_norm_act(channels, channels, 3, padding=pad, norm=norm, act="relu", reflect_pad=reflect)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += conv_norm_act(channels, channels, 3, padding=pad, norm=norm, act="none", reflect_pad=reflect)
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)
