"""Least-squares GAN loss (Mao et al. 2017), the adversarial loss of paper 000."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LSGANLoss"]


class LSGANLoss(nn.Module):
    """``mean((pred - label)²)`` with label ``real_label`` (1) or ``fake_label`` (0).

    ``forward(pred, target_is_real)``: discriminator output of any shape (e.g. the (B, 1, h, w)
    PatchGAN map, raw scores, no sigmoid) → scalar. The target tensor matches ``pred``'s shape,
    dtype and device. Generator step: ``loss(D(fake), True)``; discriminator step:
    ``0.5 * (loss(D(real), True) + loss(D(fake.detach()), False))`` as in CycleGAN.
    """

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def forward(self, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        label = self.real_label if target_is_real else self.fake_label
        return F.mse_loss(pred, torch.full_like(pred, label))
