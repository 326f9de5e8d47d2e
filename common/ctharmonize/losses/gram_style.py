"""Gram-matrix style/texture loss over a list of feature maps (CVS-CT domain loss, paper 001 texture loss)."""

from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.losses.gram_matrix import gram_matrix

__all__ = ["GramStyleLoss"]


class GramStyleLoss(nn.Module):
    """``weight · Σ_l w_l · MSE(gram(fake_l), gram(target_l))`` (``w_l`` = 1 unless ``layer_weights``).

    ``forward(fake_features, target_features)``: two equal-length lists of (B, C_l, H_l, W_l) maps,
    e.g. from :class:`~ctharmonize.networks.VGGFeatures` applied to synthetic and (unpaired) target
    images; sample b of one list is compared with sample b of the other → scalar.
    ``normalize="size"`` is CVS-CT's Gram (paper 002 eq. 1); ``"frobenius"`` is paper 001's
    normalised Gram (its eq. 7, with the lung-masked images as input). TorchScript-able.
    """

    layer_weights: Optional[list[float]]  # noqa: UP045 - TorchScript needs Optional

    def __init__(self, weight: float = 1.0, normalize: str = "size", layer_weights: Sequence[float] | None = None):
        super().__init__()
        self.weight = float(weight)
        self.normalize = normalize
        self.layer_weights = None if layer_weights is None else [float(v) for v in layer_weights]
        gram_matrix(torch.zeros(1, 1, 1, 1), normalize)  # validate the option early

    def forward(self, fake_features: list[torch.Tensor], target_features: list[torch.Tensor]) -> torch.Tensor:
        if len(fake_features) != len(target_features) or len(fake_features) == 0:
            raise ValueError("need two equal-length, non-empty feature lists")
        layer_weights = self.layer_weights
        if layer_weights is not None and len(layer_weights) != len(fake_features):
            raise ValueError("one layer weight per feature map is needed")
        total = torch.zeros((), dtype=torch.float32, device=fake_features[0].device)
        for i in range(len(fake_features)):
            term = F.mse_loss(
                gram_matrix(fake_features[i], self.normalize), gram_matrix(target_features[i], self.normalize)
            )
            if layer_weights is not None:
                term = term * layer_weights[i]
            total = total + term
        return self.weight * total
