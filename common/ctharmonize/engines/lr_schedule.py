"""Learning-rate schedule of CycleGAN and paper 000: constant, then linear decay to zero."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["linear_decay_lambda", "linear_decay_schedulers", "make_linear_decay_scheduler"]


def linear_decay_lambda(n_epochs_constant: int, n_epochs_decay: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate after ``epoch`` completed epochs (CycleGAN ``lambda_rule``).

    Exactly CycleGAN's rule ``1 - max(0, epoch + 1 - n_constant) / (n_decay + 1)``: 1.0 for the first
    ``n_epochs_constant`` epochs, then ``n_epochs_decay`` linearly falling values (n/(n+1) ... 1/(n+1)),
    and 0 once ``n_epochs_constant + n_epochs_decay`` epochs are done. Paper 000: 100 + 100.
    """
    if n_epochs_constant < 0 or n_epochs_decay < 0:
        raise ValueError(f"epoch counts must be >= 0, got {n_epochs_constant}, {n_epochs_decay}")

    def rule(epoch: int) -> float:
        return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs_constant) / float(n_epochs_decay + 1))

    return rule


def make_linear_decay_scheduler(optimizer: Optimizer, n_constant: int, n_decay: int) -> LambdaLR:
    """``LambdaLR`` with :func:`linear_decay_lambda`; step it once per epoch (the trainer does)."""
    return LambdaLR(optimizer, lr_lambda=linear_decay_lambda(n_constant, n_decay))


def linear_decay_schedulers(optimizers: Mapping[str, Optimizer], n_constant: int, n_decay: int) -> dict[str, LambdaLR]:
    """One :func:`make_linear_decay_scheduler` per optimizer, keyed like ``optimizers`` (the trainer's
    ``schedulers``)."""
    return {name: make_linear_decay_scheduler(opt, n_constant, n_decay) for name, opt in optimizers.items()}
