"""Adaptive instance normalization with a style-code-driven affine (StarGAN v2 decoder norm)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AdaIN"]


class AdaIN(nn.Module):
    """``(1 + γ(s)) · IN(x) + β(s)``; x (B, C, H, W), s (B, style_dim) → (B, C, H, W).

    ``IN`` is ``InstanceNorm2d(C, affine=False)`` (per-sample, per-channel zero mean and unit biased
    variance, eps 1e-5); ``[γ, β] = fc(s)`` with ``fc = Linear(style_dim, 2C)``, γ the first C outputs
    (Huang & Belongie 2017, in StarGAN v2's "1 + γ" form, so γ = 0 leaves the normalized features
    unscaled). Each output channel therefore has mean β_c and standard deviation |1 + γ_c| over H×W.
    Needs H·W > 1 in training mode. TorchScript-able.
    """

    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.num_features = num_features
        self.norm = nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)
        self.fc = nn.Linear(style_dim, 2 * num_features)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.fc(s)[:, :, None, None]
        gamma, beta = h[:, : self.num_features], h[:, self.num_features:]
        return (1 + gamma) * self.norm(x) + beta
