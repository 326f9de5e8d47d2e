"""Paper 001's learning-rate schedule: ``torch.optim.lr_scheduler.CyclicLR`` from a base LR of 1e-4."""

from __future__ import annotations

from collections.abc import Mapping

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CyclicLR

__all__ = ["cyclic_lr_schedulers", "make_cyclic_scheduler"]


def make_cyclic_scheduler(optimizer: Optimizer, base_lr: float = 1e-4, max_lr: float = 5e-4,
                          step_size_up: int = 2000, step_size_down: int | None = None,
                          mode: str = "triangular2") -> CyclicLR:
    """``CyclicLR(optimizer, base_lr, max_lr, step_size_up, mode, cycle_momentum=False)``; step it every
    iteration (the trainer's ``scheduler_interval="iteration"``).

    Paper 001: "cyclic learning scheduler with the base learning rate set to 10⁻⁴"; ``max_lr``, ``mode``
    and the step size are open (spec: 5e-4, ``"triangular2"``, ``step_size_up`` = 2 epochs of iterations).
    ``cycle_momentum=False``: Adam has no momentum to cycle. Construction sets the LR to ``base_lr``.
    """
    return CyclicLR(optimizer, base_lr=float(base_lr), max_lr=float(max_lr), step_size_up=int(step_size_up),
                    step_size_down=None if step_size_down is None else int(step_size_down), mode=mode,
                    cycle_momentum=False)


def cyclic_lr_schedulers(optimizers: Mapping[str, Optimizer], base_lr: float = 1e-4, max_lr: float = 5e-4,
                         step_size_up: int = 2000, step_size_down: int | None = None,
                         mode: str = "triangular2") -> dict[str, CyclicLR]:
    """One :func:`make_cyclic_scheduler` per optimizer, keyed like ``optimizers`` (the trainer's ``schedulers``)."""
    return {name: make_cyclic_scheduler(opt, base_lr, max_lr, step_size_up, step_size_down, mode)
            for name, opt in optimizers.items()}
