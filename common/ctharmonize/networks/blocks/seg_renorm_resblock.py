"""Segmentation-renormalized residual block (paper 004, Fig. 3: "SegRenormResBlock")."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.blocks.seg_renorm_conv import SegRenormConv

__all__ = ["SegRenormResnetBlock"]


class SegRenormResnetBlock(nn.Module):
    """``x + [pad, conv3×3, SegRenorm, ReLU, (dropout), pad, conv3×3, SegRenorm](x, f)``; (B, C, H, W) → same.

    :class:`~ctharmonize.networks.blocks.ResnetBlock` (Zhu et al.'s CycleGAN block) with each
    instance norm replaced by :class:`SegRenorm`, both driven by the same embedding f (B, embed_dim).
    ``padding``: ``"reflect"`` (default, reflection pad 1) or ``"zeros"``. TorchScript-able.
    """

    def __init__(self, channels: int, embed_dim: int = 512, dropout: float = 0.0, padding: str = "reflect"):
        super().__init__()
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"unknown padding {padding!r}; expected 'reflect' or 'zeros'")
        pad, reflect = (0, 1) if padding == "reflect" else (1, 0)
        self.conv1 = SegRenormConv(channels, channels, 3, padding=pad, reflect_pad=reflect, embed_dim=embed_dim)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = SegRenormConv(channels, channels, 3, padding=pad, reflect_pad=reflect, embed_dim=embed_dim,
                                   act="none")

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.dropout(self.conv1(x, embedding)), embedding)
