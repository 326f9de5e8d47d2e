"""Cycle-consistency loss (Zhu et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CycleConsistencyLoss"]


class CycleConsistencyLoss(nn.Module):
    """``weight · mean|reconstructed − real|``; images (B, 1, H, W) in [-1, 1] → scalar.

    ``weight`` 10 as in paper 000 §2 ("weighted by a factor of 10") and CycleGAN's λ.
    """

    def __init__(self, weight: float = 10.0):
        super().__init__()
        self.weight = float(weight)

    def forward(self, reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return self.weight * F.l1_loss(reconstructed, real)
