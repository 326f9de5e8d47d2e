"""HU in, HU out: wrap a 2-D network that works in [-1, 1] so that it takes and returns HU."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.transforms import HU_MAX, HU_MIN

__all__ = ["HUWrapper"]


class HUWrapper(nn.Module):
    """``HU (B, 1, H, W) -> clip to [hu_min, hu_max] -> [-1, 1] -> network -> [-1, 1] -> HU``.

    The wrapped network maps (B, 1, H, W) in **[-1, 1]** to the same shape and range; the wrapper
    maps **HU** to **HU** (output clipped to the window). This is what the bundle exports, so a
    deployed TorchScript file needs no pre- or post-processing besides slicing the volume and
    padding H, W to the network's spatial multiple. TorchScript-able.

    Args:
        network: the [-1, 1] image-to-image network (e.g. ``MultipathGenerator.path(s, t)``).
        hu_min, hu_max: the HU window the network was trained on (paper 000: [-1024, 3072]).
    """

    def __init__(self, network: nn.Module, hu_min: float = HU_MIN, hu_max: float = HU_MAX):
        super().__init__()
        if not float(hu_max) > float(hu_min):
            raise ValueError(f"HU window must have hu_max > hu_min, got [{hu_min}, {hu_max}]")
        self.network = network
        self.hu_min = float(hu_min)
        self.hu_max = float(hu_max)

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        half = (self.hu_max - self.hu_min) / 2.0
        x = torch.clamp(hu, self.hu_min, self.hu_max).sub(self.hu_min).div(half).sub(1.0)
        y = self.network(x)
        return torch.clamp(y, -1.0, 1.0).add(1.0).mul(half).add(self.hu_min)
