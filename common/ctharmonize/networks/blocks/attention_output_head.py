"""Image-domain post-processing O of paper 001: a long attention link from the input and two convolutions."""

from __future__ import annotations

import torch
from monai.networks.nets.attentionunet import AttentionBlock
from torch import nn

__all__ = ["OUTPUT_ACTIVATIONS", "AttentionOutputHead"]

OUTPUT_ACTIVATIONS = ("clamp", "tanh", "linear")


class AttentionOutputHead(nn.Module):
    """O: ``forward(u, x)`` → (B, out_channels, H, W), the harmonized slice.

    ``u``: the F⁻¹ output (B, C_γ, H, W); ``x``: the input slice I_nh (B, 1, H, W) in [-1, 1].
    The attention link is MONAI's Oktay attention gate ``x̃ = x ⊙ σ(ψ(ReLU(W_x x + W_g u)))`` (1 × 1 convs
    with BatchNorm, ``attention_channels`` wide), then ``Conv3×3(C_γ + 1 → hidden)``, LeakyReLU(0.2),
    ``Conv3×3(hidden → out_channels)`` on ``cat(u, x̃)``; ``residual=True`` adds ``x`` (a global skip, off
    by default as in the paper).

    ``output``: ``"clamp"`` (default) is the paper's linear output while training and clamped to
    [-1, 1] in eval mode, so inference returns the contract's range and training keeps gradients at
    the bounds (air is exactly -1 in a noise-free target); ``"tanh"`` bounds it always; ``"linear"``
    never. TorchScript-able.
    """

    def __init__(self, in_channels: int = 8, hidden: int = 32, attention_channels: int = 8, out_channels: int = 1,
                 output: str = "clamp", residual: bool = False):
        super().__init__()
        if output not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output {output!r}; expected one of {', '.join(OUTPUT_ACTIVATIONS)}")
        self.output = output
        self.residual = bool(residual)
        self.attention = AttentionBlock(spatial_dims=2, f_int=attention_channels, f_g=in_channels, f_l=1)
        self.conv1 = nn.Conv2d(in_channels + 1, hidden, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(hidden, out_channels, 3, padding=1)

    def forward(self, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        gated = self.attention(u, x)
        y = self.conv2(self.act(self.conv1(torch.cat([u, gated], dim=1))))
        if self.residual:
            y = y + x
        if self.output == "tanh":
            return torch.tanh(y)
        if self.output == "clamp" and not self.training:
            return y.clamp(-1.0, 1.0)
        return y
