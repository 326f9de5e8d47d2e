"""Segmentation renormalization (paper 004, Eq. 1): parameter-free instance norm, then FiLM from a segmentation embedding."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SegRenorm"]


class SegRenorm(nn.Module):
    """``(1 + γ(f)) · IN(x) + β(f)``; x (B, C, H, W), embedding f (B, embed_dim) → (B, C, H, W).

    ``IN`` is ``InstanceNorm2d(C, affine=False, track_running_stats=False)``: per-sample, per-channel
    zero mean and unit biased variance over H×W (eps 1e-5), with no parameters of its own. The
    renormalization parameters come from the structural embedding f = f(m) of a predicted
    segmentation m through two FiLM layers, ``gamma = Linear(embed_dim, C)`` and
    ``beta = Linear(embed_dim, C)`` (the paper's W_γ and W_β). Paper 004 conditions *channel-wise*:
    f is one vector per sample, so γ and β are (B, C) and broadcast over H×W; no resizing is needed.
    The "1 + γ" form (spec 004.7 #2) makes γ = 0 leave the standardized features unscaled. Each
    output channel has mean β_c and standard deviation |1 + γ_c| over H×W. Needs H·W > 1 in
    training mode. TorchScript-able.
    """

    def __init__(self, num_features: int, embed_dim: int = 512, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.embed_dim = embed_dim
        self.norm = nn.InstanceNorm2d(num_features, eps=eps, affine=False, track_running_stats=False)
        self.gamma = nn.Linear(embed_dim, num_features)
        self.beta = nn.Linear(embed_dim, num_features)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        gamma = self.gamma(embedding)[:, :, None, None]
        beta = self.beta(embedding)[:, :, None, None]
        return (1 + gamma) * self.norm(x) + beta
