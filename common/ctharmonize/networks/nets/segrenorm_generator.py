"""Segmentation-renormalized ResNet generator G / F of paper 004, in the Zhu et al. CycleGAN layout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.utils import normal_init
from torch import nn

from ctharmonize.networks.blocks.seg_renorm_conv import SegRenormConv
from ctharmonize.networks.blocks.seg_renorm_resblock import SegRenormResnetBlock
from ctharmonize.networks.nets.semantic_extractor import SemanticExtractor

__all__ = ["SegRenormGenerator"]


class SegRenormGenerator(nn.Module):
    """``forward(x, seg)``: image x (B, in_channels, H, W) in [-1, 1], soft segmentation seg (B, num_classes, H', W')
    (softmax probabilities) → image (B, out_channels, H, W) in [-1, 1] (tanh).

    Layout (Zhu et al.'s resnet_9blocks with every instance norm replaced by :class:`SegRenorm`):
    ``encoder`` = [reflect-pad 3, conv 7×7 (in → ngf)], [conv 3×3 s2 (→ 2ngf)], [conv 3×3 s2 (→ 4ngf)],
    each followed by SegRenorm and ReLU; ``blocks`` = ``n_blocks`` :class:`SegRenormResnetBlock` (4ngf);
    ``decoder`` = 2 × [transposed conv 3×3 s2, SegRenorm, ReLU] (→ 2ngf → ngf); ``to_image`` =
    reflect-pad 3, conv 7×7 (ngf → out), tanh. That is 2·n_blocks + 5 SegRenorm layers (23 for 9
    blocks) and no other normalization: no norm has affine parameters of its own.

    How the embedding reaches each block: ``extractor`` (:class:`SemanticExtractor`, owned by this
    generator) maps seg to one vector f(m) (B, embed_dim) per slice, computed once per forward pass.
    That same f(m) is passed to every SegRenorm layer (shared across blocks, paper §II-B), and each
    layer turns it into its own per-channel γ, β with its own two Linear layers. Gradients flow back
    through f(m) into seg, hence into the segmenter that produced it. ``translate(x, embedding)`` runs
    the generator on a precomputed embedding (``embed(seg)``), e.g. to hold the condition fixed.

    H, W must be multiples of ``spatial_multiple`` = 4; seg must be ≥ ``extractor.min_size`` (16) px and
    may differ in size from x. Init N(0, 0.02), zero bias (``init="pytorch"`` keeps PyTorch's). Paper
    004's own generator is a residual U-Net (spec 004.1.3); this one keeps the project's CycleGAN
    layout so the method differs from the CycleGAN baseline only by the renormalization.
    TorchScript-able (``forward``, ``embed``, ``translate``).

    Parameters (1 channel, 7 classes, embed_dim 512, extractor (64, 128, 256, 512), pool 4):
    ngf 64, 9 blocks: 22,760,833 (Zhu's 11,365,633 + FiLM 5,384,448 + extractor 6,010,752).
    CPU demo ngf 16, 3 blocks, embed_dim 64, extractor (16, 32, 64, 128), pool 4: 573,409.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, num_classes: int = 7, ngf: int = 64, n_blocks: int = 9,
        embed_dim: int = 512, extractor_features: Sequence[int] = (64, 128, 256, 512), pool_size: int = 4,
        extractor_dropout: float = 0.5, dropout: float = 0.0, padding: str = "reflect", init: str = "normal",
    ):
        super().__init__()
        if init not in ("normal", "pytorch"):
            raise ValueError(f"init must be 'normal' or 'pytorch', got {init!r}")
        self.extractor = SemanticExtractor(num_classes, embed_dim, extractor_features, pool_size, extractor_dropout)
        self.encoder = nn.ModuleList([
            SegRenormConv(in_channels, ngf, 7, reflect_pad=3, embed_dim=embed_dim),
            SegRenormConv(ngf, 2 * ngf, 3, stride=2, padding=1, embed_dim=embed_dim),
            SegRenormConv(2 * ngf, 4 * ngf, 3, stride=2, padding=1, embed_dim=embed_dim),
        ])
        self.blocks = nn.ModuleList(
            [SegRenormResnetBlock(4 * ngf, embed_dim, dropout=dropout, padding=padding) for _ in range(n_blocks)]
        )
        self.decoder = nn.ModuleList([
            SegRenormConv(4 * ngf, 2 * ngf, transposed=True, embed_dim=embed_dim),
            SegRenormConv(2 * ngf, ngf, transposed=True, embed_dim=embed_dim),
        ])
        self.to_image = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())
        if init == "normal":
            self.apply(normal_init)  # N(0, 0.02) conv/linear weights, zero bias: pix2pix/CycleGAN init
        else:
            self.extractor.apply(_reset)
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.spatial_multiple = 4  # an instance attribute, so that a scripted module keeps it

    @torch.jit.export
    def embed(self, seg: torch.Tensor) -> torch.Tensor:
        """Soft segmentation (B, num_classes, H', W') → shared embedding f(m) (B, embed_dim)."""
        return self.extractor(seg)

    @torch.jit.export
    def translate(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Image (B, in_channels, H, W) in [-1, 1] and f(m) (B, embed_dim) → image (B, out_channels, H, W) in [-1, 1]."""
        m = self.spatial_multiple
        if x.shape[-2] % m != 0 or x.shape[-1] % m != 0:
            raise ValueError(f"H and W must be multiples of spatial_multiple = {m}, got {list(x.shape[-2:])}")
        h = x
        for layer in self.encoder:
            h = layer(h, embedding)
        for block in self.blocks:
            h = block(h, embedding)
        for layer in self.decoder:
            h = layer(h, embedding)
        return self.to_image(h)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        return self.translate(x, self.embed(seg))


def _reset(m: nn.Module) -> None:
    """Undo the extractor's own N(0, 0.02) init (``init="pytorch"``): PyTorch's default conv/linear init."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        m.reset_parameters()
