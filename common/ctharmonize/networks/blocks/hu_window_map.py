"""Feed a network trained on one HU window with images scaled from another window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["HUWindowMap"]


class HUWindowMap(nn.Module):
    """``network(a · x + b)``: x is (B, C, H, W) in [-1, 1] of the HU window ``source_window`` (e.g. CVS-CT's
    [-1000, 900]); the network receives the same HU values in [-1, 1] of ``target_window`` (the window it
    was trained on, e.g. ``CTKernelFeatures``' [-1024, 3072]). Affine and exact, no clipping (HU outside
    ``source_window`` are not in x anyway). Returns whatever ``network`` returns. TorchScript-able when
    ``network`` is.
    """

    def __init__(self, network: nn.Module, source_window: Sequence[float], target_window: Sequence[float]):
        super().__init__()
        (s0, s1), (t0, t1) = (float(v) for v in source_window), (float(v) for v in target_window)
        if not (s1 > s0 and t1 > t0):
            raise ValueError(f"HU windows must be [low, high] with high > low, got {list(source_window)}, "
                             f"{list(target_window)}")
        self.network = network
        # hu = (x + 1) (s1 - s0) / 2 + s0 ;  y = 2 (hu - t0) / (t1 - t0) - 1
        self.scale = (s1 - s0) / (t1 - t0)
        self.shift = (s1 + s0 - t1 - t0) / (t1 - t0)

    def forward(self, x: torch.Tensor) -> Any:
        return self.network(x * self.scale + self.shift)
