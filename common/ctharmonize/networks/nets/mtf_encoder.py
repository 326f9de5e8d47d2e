"""MTF embedding Ω of paper 001: the 64 × 64 MTF2D map → feature maps on the image's centred frequency grid."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctharmonize.networks.blocks.frequency_grid import resample_centered

__all__ = ["MTFEncoder"]


class MTFEncoder(nn.Module):
    """Ω: ``forward(mtf2d, size)`` → (B, C_ω, H, W) MTF features aligned with ``centered_fft2`` of an H × W image.

    ``mtf2d``: (B, 1, 64, 64) in [0, ~1.3] (1 at DC, MTF > 1 where a kernel boosts), fftshift-centred,
    DC at (32, 32), spanning [-Nyquist, Nyquist) of the image's own pixel spacing
    (:func:`ctharmonize.simulation.mtf2d.kernel_mtf2d`). ``size`` = [H, W] of the image.

    Layers (paper: "two convolutional transpose layers to match the output size"; widths, kernels and
    activations are open): ``ConvTranspose2d(1 → hidden, k = 2s+1, stride s, pad s, output_pad s-1)``,
    LeakyReLU(0.2), the same with ``hidden → out_channels`` for the second stride; the defaults
    ``strides=(2, 4)`` give 64 → 128 → 512, the paper's 512 × 512 slices. An odd kernel with padding s
    maps input index i to output s·i, so DC (32) lands on DC (H//2) exactly (a k = 4 kernel would shift
    it by half a pixel per layer). For another image size the result is resampled onto the image's
    grid with :func:`~ctharmonize.networks.blocks.frequency_grid.resample_centered` (DC to DC; set
    ``strides`` so that 64·∏s equals H to skip it). Linear output. TorchScript-able.
    """

    def __init__(self, out_channels: int = 8, hidden: int = 8, strides: Sequence[int] = (2, 4),
                 map_size: int = 64):
        super().__init__()
        if len(strides) != 2 or min(strides) < 1:
            raise ValueError("MTFEncoder needs two strides >= 1 (two transposed convolutions)")
        s1, s2 = int(strides[0]), int(strides[1])
        self.out_channels = int(out_channels)
        self.map_size = int(map_size)
        self.feature_size = self.map_size * s1 * s2
        self.up1 = nn.ConvTranspose2d(1, hidden, 2 * s1 + 1, stride=s1, padding=s1, output_padding=s1 - 1)
        self.act = nn.LeakyReLU(0.2)
        self.up2 = nn.ConvTranspose2d(hidden, out_channels, 2 * s2 + 1, stride=s2, padding=s2,
                                      output_padding=s2 - 1)

    def forward(self, mtf2d: torch.Tensor, size: list[int]) -> torch.Tensor:
        if mtf2d.dim() != 4 or mtf2d.shape[1] != 1 or mtf2d.shape[2] != self.map_size \
                or mtf2d.shape[3] != self.map_size:
            raise ValueError(f"expected an MTF2D map of shape (B, 1, {self.map_size}, {self.map_size})")
        features = self.up2(self.act(self.up1(mtf2d)))
        return resample_centered(features, size)
