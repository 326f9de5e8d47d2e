"""Wasserstein critic loss (WGAN; used with a gradient penalty by the physics-informed bundle, paper 001)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WGANGPLoss"]


class WGANGPLoss(nn.Module):
    """``-mean(score)`` for real targets, ``+mean(score)`` for fake targets; any shape → scalar.

    Critic step: ``loss(C(real), True) + loss(C(fake.detach()), False) + gradient_penalty(C, real, fake)``;
    generator step: ``loss(C(fake), True)``. The penalty is :func:`~ctharmonize.losses.gradient_penalty`.
    """

    def forward(self, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        return -pred.mean() if target_is_real else pred.mean()
