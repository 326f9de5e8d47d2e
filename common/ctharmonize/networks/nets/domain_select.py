"""Pick each sample's own domain from per-domain outputs (StarGAN v2 multi-head networks)."""

from __future__ import annotations

import torch

__all__ = ["select_domain"]


def select_domain(values: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``values[i, y[i]]`` for every sample i: values (B, K, ...) → (B, ...), y (B,) integer domain
    indices in [0, K) (an index outside it raises). One indexing op, no loop over samples.
    TorchScript-able."""
    if y.dim() != 1 or y.shape[0] != values.shape[0]:
        raise ValueError(f"y must have shape (B,) with B = {values.shape[0]}, got {list(y.shape)}")
    return values[torch.arange(values.shape[0], device=values.device), y.to(torch.long)]
