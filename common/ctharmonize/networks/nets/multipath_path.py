"""One source→target path of the multipath generator as a standalone, exportable module."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MultipathPath"]


class MultipathPath(nn.Module):
    """``decoder[target](latent(encoder[source](x)))``; image (B, 1, H, W) in [-1, 1] → same shape, [-1, 1].

    With ``residual=True`` the decoder output is a correction: ``clamp(x + decoder(...), -1, 1)``.

    H, W must be multiples of ``spatial_multiple`` (2 ** the encoder's stride-2 convs).
    Holds references (not copies) to the generator's submodules, so it shares their weights.
    ``torch.jit.script`` and ``torch.jit.trace`` both work; this is what inference exports.
    """

    def __init__(self, encoder: nn.Module, latent: nn.Module, decoder: nn.Module, source: str = "", target: str = "",
                 residual: bool = False, spatial_multiple: int = 4):
        super().__init__()
        self.residual = bool(residual)
        self.encoder = encoder
        self.latent = latent
        self.decoder = decoder
        self.source = source
        self.target = target
        self.spatial_multiple = int(spatial_multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder(self.latent(self.encoder(x)))
        if self.residual:
            y = torch.clamp(x + y, -1.0, 1.0)
        return y
