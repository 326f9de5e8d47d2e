"""Semantic extractor of paper 004 (Fig. 4B): soft segmentation → one structural embedding vector per slice."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.utils import normal_init
from torch import nn

__all__ = ["SemanticExtractor"]


class SemanticExtractor(nn.Module):
    """Soft segmentation (B, C, H, W), softmax probabilities in [0, 1] → embedding f(m) (B, embed_dim), unbounded.

    A shallow CNN: ``len(features)`` × [conv 3×3 (pad 1) → max-pool 2 → ReLU] (64, 128, 256, 512
    channels by default), ``AdaptiveAvgPool2d(pool_size)``, flatten, ``Linear(features[-1]·pool_size²,
    embed_dim)`` → ReLU → ``Dropout(dropout)`` → ``Linear(embed_dim, embed_dim)``.

    The embedding is a **global vector**, not a spatial map: paper 004 computes γ and β with "two fully
    connected layers" on f(m) and conditions the generator "channel-wise" via FiLM, and the issue
    asks for "a 512-d embedding". Spatial layout still reaches it through the pooled 4×4 grid and the
    fully connected layer (the paper's point that CNN embeddings keep relative positions).

    ``pool_size = 4``: the paper's Fig. 4B pools with AvgPool(2, 4) on 256² crops and AvgPool(1, 2) on
    128² crops; after four ×2 max-pools both give a 4×4 grid, so the adaptive pool reproduces that grid
    at any input size (≥ 2^len(features) px; the authors' code uses 7×7). Init N(0, 0.02), zero bias.
    TorchScript-able.

    Parameters (7 classes): defaults 6,010,752 (4,194,816 in the first Linear); CPU demo
    ``embed_dim=64, features=(16, 32, 64, 128)``: 233,312.
    """

    def __init__(
        self, num_classes: int = 7, embed_dim: int = 512, features: Sequence[int] = (64, 128, 256, 512),
        pool_size: int = 4, dropout: float = 0.5,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        prev = num_classes
        for width in features:
            layers += [nn.Conv2d(prev, width, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(inplace=True)]
            prev = width
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.head = nn.Sequential(
            nn.Flatten(1), nn.Linear(prev * pool_size * pool_size, embed_dim), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(embed_dim, embed_dim),
        )
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.min_size = 2 ** len(features)
        self.apply(normal_init)

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.body(seg)))
