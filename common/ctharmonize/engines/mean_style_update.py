"""Ignite handler: refresh a StarGAN translator's mean styles from its (EMA) mapping network during training."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["MeanStyleUpdate"]


class MeanStyleUpdate:
    """At ``EPOCH_COMPLETED(every=every)``: ``translator.set_mean_styles(n, seed)``.

    List it in ``train_handlers`` BEFORE the checkpoint selector, so that validation (and the ``model.pt`` the
    selector saves) uses the styles of the current mapping network: ignite calls handlers of one event in the order
    they were attached. ``translator``: a :class:`~ctharmonize.networks.StarGANTranslator` over the trainer's EMA
    networks (the auxiliary ``G_ema``, ``F_ema``, ``E_ema``). Cheap: n mapping-network forwards (an MLP).
    """

    def __init__(self, translator: nn.Module, every: int = 1, n: int = 10000, seed: int = 0):
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.translator, self.every, self.n, self.seed = translator, int(every), int(n), int(seed)

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def __call__(self, engine: Any = None) -> None:
        self.translator.set_mean_styles(n=self.n, seed=self.seed)
