"""Running per-epoch mean of named scalar losses, checkpointable and reduced over DDP ranks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist

from ctharmonize.engines.distributed import is_distributed

__all__ = ["EpochAverage"]


class EpochAverage:
    """Sum scalar losses per name during an epoch; :meth:`compute` returns the means and resets.

    Values stay detached tensors on their device until :meth:`compute`, so updating does not force a
    GPU sync every iteration. Under DDP the sums and counts of all ranks are all-reduced (every rank
    must call :meth:`compute`, with the same names).
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def update(self, values: Mapping[str, torch.Tensor | float]) -> None:
        for name, value in values.items():
            value = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
            self.counts[name] = self.counts.get(name, 0) + 1

    def compute(self) -> dict[str, float]:
        """Means of the values seen since the last call; resets the sums."""
        names = sorted(self.sums)
        if not names:
            return {}
        device = self.sums[names[0]].device
        stacked = torch.stack([self.sums[n].to(device).reshape(()) for n in names] +
                              [torch.tensor(float(self.counts[n]), device=device) for n in names])
        if is_distributed():
            if dist.get_backend() == "nccl" and device.type != "cuda":
                stacked = stacked.cuda()
            dist.all_reduce(stacked)
        stacked = stacked.cpu()
        self.reset()
        return {n: float(stacked[i] / stacked[len(names) + i]) for i, n in enumerate(names)}

    def reset(self) -> None:
        self.sums, self.counts = {}, {}

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sums = {k: v.clone() for k, v in state["sums"].items()}
        self.counts = {k: int(v) for k, v in state["counts"].items()}
