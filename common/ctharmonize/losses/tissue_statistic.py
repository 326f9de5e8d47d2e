"""Tissue-statistic loss of paper 000: keep each anatomical label's mean intensity through translation."""

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["TissueStatisticLoss"]


class TissueStatisticLoss(nn.Module):
    """``weight · mean over valid (sample, label) of (mean_real − mean_fake)²``.

    ``forward(real, fake, labels)``: ``real`` and ``fake`` (B, 1, H, W) images in network space
    [-1, 1] (so a squared difference of 0.01 ≈ a (0.1 · 2048 HU)² shift; HU inputs would need a
    far smaller weight); ``labels`` (B, 1, H, W) integer tissue map of the REAL image (e.g. the
    canonical codes of ``labels.json``; floating maps are rounded) → scalar.

    For every sample b and label l, the mean of ``real`` and of ``fake`` over the pixels where
    ``labels == l`` is taken within that sample only (samples never mix). A pair is valid when l is
    not in ``ignore_labels``, is in ``labels_to_use`` (when given), and has MORE than
    ``min_pixels`` pixels in sample b. (The authors' code is reported to have compared the label
    value with 5 instead of the pixel count; we count pixels.) The squared differences are averaged
    over the valid pairs; with none valid the loss is 0 and still part of the graph.

    Paper 000 §2: MSE between label mean intensities of real and synthetic images, weight 0.01,
    TotalSegmentator labels. Vectorised with ``index_add_``; TorchScript-able.

    Args:
        weight: loss weight (paper: 0.01).
        min_pixels: a label needs more than this many pixels in a sample (reference: 5).
        labels: restrict to these label values (None: all labels present).
        ignore_labels: never used (default background 0).
    """

    use_labels: list[int]
    ignore_labels: list[int]

    def __init__(
        self,
        weight: float = 0.01,
        min_pixels: int = 5,
        labels: Sequence[int] | None = None,
        ignore_labels: Sequence[int] = (0,),
    ):
        super().__init__()
        self.weight = float(weight)
        self.min_pixels = int(min_pixels)
        self.use_labels = [] if labels is None else [int(v) for v in labels]
        self.restrict = labels is not None
        self.ignore_labels = [int(v) for v in ignore_labels]

    def forward(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if real.shape != fake.shape or labels.shape != real.shape:
            raise ValueError(
                f"real {list(real.shape)}, fake {list(fake.shape)} and labels {list(labels.shape)} must have one shape"
            )
        if labels.is_floating_point():
            labels = torch.round(labels)
        lab = labels.to(torch.long).reshape(labels.shape[0], -1)
        if lab.numel() > 0 and int(lab.min()) < 0:
            raise ValueError("tissue labels must be non-negative integers")
        batch = lab.shape[0]
        n_labels = int(lab.max()) + 1 if lab.numel() > 0 else 1
        index = (lab + n_labels * torch.arange(batch, device=lab.device).unsqueeze(1)).reshape(-1)
        dtype = torch.promote_types(real.dtype, torch.float32)
        bins = batch * n_labels
        counts = torch.zeros(bins, dtype=dtype, device=real.device).index_add_(
            0, index, torch.ones_like(index, dtype=dtype)
        )
        sum_real = torch.zeros(bins, dtype=dtype, device=real.device).index_add_(0, index, real.reshape(-1).to(dtype))
        sum_fake = torch.zeros(bins, dtype=dtype, device=real.device).index_add_(0, index, fake.reshape(-1).to(dtype))

        values = torch.arange(n_labels, device=real.device).repeat(batch)
        valid = counts > self.min_pixels
        for ignored in self.ignore_labels:
            valid = valid & (values != ignored)
        if self.restrict:
            allowed = torch.zeros_like(valid)
            for keep in self.use_labels:
                allowed = allowed | (values == keep)
            valid = valid & allowed

        safe = counts.clamp(min=1.0)
        diff = (sum_real / safe - sum_fake / safe) ** 2
        weights = valid.to(dtype)
        return self.weight * (diff * weights).sum() / weights.sum().clamp(min=1.0)
