"""Paper 001's texture loss: Frobenius-normalised Gram matrices of a feature network on lung-masked images."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from ctharmonize.losses.gram_style import GramStyleLoss

__all__ = ["VGG19_POOL_LAYERS", "MaskedGramTextureLoss"]

#: VGG-19's five down-sampling (max-pool) outputs, paper 001's "ith VGG's down sampling layer" (spec §2)
VGG19_POOL_LAYERS = ("pool1", "pool2", "pool3", "pool4", "pool5")


class MaskedGramTextureLoss(nn.Module):
    """L_t of paper 001 eq. 7: ``weight · Σ_i MSE(Gm(Φ_i(m ⊙ I_h)) / ‖·‖_F, Gm(Φ_i(m ⊙ I_r)) / ‖·‖_F)``.

    ``forward(fake, target, mask)``: I_h and I_r (B, 1, H, W) in [-1, 1] and the lung mask (B, 1, H, W)
    (1 inside, 0 outside; GT/XCAT lung mask applied to both) → scalar ≥ 0. Both images are multiplied
    by the mask before the feature network, as the paper says ("each harmonized and GT image was
    multiplied by their lung mask"); pixels outside become ``fill`` (0 = the literal product) and so
    never reach the loss. Φ_i are the feature maps the network returns (one per stage); the Grams are
    per-sample, Frobenius-normalised (:func:`~ctharmonize.losses.gram_matrix` ``"frobenius"``) and the MSEs
    are summed over stages (:class:`~ctharmonize.losses.GramStyleLoss`).

    ``feature_network``: any module mapping (B, 1, H, W) → list of (B, C_i, H_i, W_i); default the
    project's CT kernel feature network (:func:`~ctharmonize.networks.load_ct_kernel_features`, 4 stages,
    ImageNet VGG-19 being unreachable here). :meth:`with_vgg19` builds the paper's VGG-19 (five pool
    outputs) from a user's weights file. The network is frozen and kept in eval mode; gradients flow to
    ``fake`` only. The paper's weight λt = 50 is ``MTF_HARMONIZER_LOSS_WEIGHTS["texture"]``.
    """

    def __init__(self, feature_network: nn.Module | None = None, weight: float = 1.0, fill: float = 0.0,
                 layer_weights: Sequence[float] | None = None):
        super().__init__()
        if feature_network is None:
            from ctharmonize.networks.nets.ct_kernel_features import load_ct_kernel_features

            feature_network = load_ct_kernel_features()
        self.features = feature_network
        self.features.requires_grad_(False)
        self.features.eval()
        self.fill = float(fill)
        self.gram = GramStyleLoss(weight=weight, normalize="frobenius", layer_weights=layer_weights)

    @classmethod
    def with_vgg19(cls, weights_path: str | os.PathLike, weight: float = 1.0, fill: float = 0.0) -> MaskedGramTextureLoss:
        """The paper's variant: a torchvision VGG-19 state dict from ``weights_path``, taps at the 5 pools."""
        from ctharmonize.networks.nets.vgg_features import VGGFeatures

        return cls(VGGFeatures(weights_path, arch="vgg19", layers=VGG19_POOL_LAYERS), weight=weight, fill=fill)

    @property
    def weight(self) -> float:
        return self.gram.weight

    def train(self, mode: bool = True) -> MaskedGramTextureLoss:
        super().train(mode)
        self.features.eval()  # a loss network: BatchNorm statistics stay fixed
        return self

    def mask(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``mask ⊙ x + fill · (1 − mask)``, the image the feature network sees."""
        m = mask.to(x.dtype)
        if self.fill == 0.0:
            return x * m
        return x * m + self.fill * (1.0 - m)

    def forward(self, fake: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if fake.shape != target.shape or mask.shape[0] != fake.shape[0] or mask.shape[-2:] != fake.shape[-2:]:
            raise ValueError(f"fake {tuple(fake.shape)}, target {tuple(target.shape)} and mask "
                             f"{tuple(mask.shape)} must share batch size and H × W")
        fake_features = self.features(self.mask(fake, mask))
        with torch.no_grad():
            target_features = self.features(self.mask(target, mask))
        return self.gram(list(fake_features), list(target_features))
