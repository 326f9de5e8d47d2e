"""Conv → segmentation renormalization → activation: the unit every layer of the seg-renorm generator is made of."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.blocks.conv_norm_act import activation, conv_norm_act, deconv_norm_act
from ctharmonize.networks.blocks.seg_renorm import SegRenorm

__all__ = ["SegRenormConv"]


class SegRenormConv(nn.Module):
    """``act(SegRenorm(conv(x), f))``; x (B, in, H, W), f (B, embed_dim) → (B, out, H', W').

    ``conv`` is ``[ReflectionPad2d(reflect_pad)]? + Conv2d(kernel_size, stride, padding)`` with a
    bias, or with ``transposed=True`` the CycleGAN ×2 upsampling ``ConvTranspose2d(3, stride 2,
    padding 1, output_padding 1)`` (then ``kernel_size``/``stride``/``padding`` are ignored).
    ``act``: ``"relu"``, ``"leakyrelu"`` (0.2) or ``"none"``. TorchScript-able.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 0,
        reflect_pad: int = 0, transposed: bool = False, embed_dim: int = 512, act: str = "relu",
    ):
        super().__init__()
        if transposed:
            layers = deconv_norm_act(in_channels, out_channels, norm="none", act="none")
        else:
            layers = conv_norm_act(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                   norm="none", act="none", reflect_pad=reflect_pad, bias=True)
        self.conv = nn.Sequential(*layers)
        self.renorm = SegRenorm(out_channels, embed_dim)
        self.act = activation(act)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.act(self.renorm(self.conv(x), embedding))
