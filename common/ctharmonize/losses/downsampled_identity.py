"""Identity loss on downsampled images: the multipath cycleGAN "without guidance" (Krishnan et al. 2025)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DownsampledIdentityLoss"]


class DownsampledIdentityLoss(nn.Module):
    """``weight · MSE(down(real), down(fake))``; images (B, 1, H, W) in [-1, 1] → scalar.

    Paper 000 §2: "the mean squared error between the downsampled versions of the real and
    synthetic images" (no factor or weight given). The authors' code resizes 512² slices to 256²
    (``factor=2``) with bilinear interpolation (``align_corners=True``) and schedules the weight
    per epoch (see :meth:`reference_weight`). Our default ``mode="area"`` averages ``factor``×``factor``
    blocks instead (true average pooling, which smooths kernel noise rather than point-sampling
    it); ``mode="bilinear"`` reproduces the reference. ``weight`` is a plain attribute, so a trainer
    can reassign it each epoch.
    """

    def __init__(self, weight: float = 1.0, factor: int = 2, mode: str = "area"):
        super().__init__()
        if mode not in ("area", "bilinear"):
            raise ValueError(f"unknown mode {mode!r}; expected 'area' or 'bilinear'")
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.weight = float(weight)
        self.factor = int(factor)
        self.mode = mode

    @staticmethod
    def reference_weight(epoch: int) -> float:
        """The authors' weight schedule (1-based epoch): 1e7, then ÷100 per epoch through epoch 5, then 0.01."""
        if epoch <= 1:
            return 1e7
        if epoch < 6:
            return 1e7 / 100.0 ** (epoch - 1)
        return 0.01

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        if self.mode == "area":
            return F.avg_pool2d(x, self.factor)
        size = [x.shape[-2] // self.factor, x.shape[-1] // self.factor]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.weight * F.mse_loss(self._down(fake), self._down(real))
