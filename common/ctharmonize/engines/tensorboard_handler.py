"""TensorBoard logging of a :class:`~ctharmonize.engines.GANTrainer`: losses, learning rates, example images."""

from __future__ import annotations

import os
from typing import Any

import torch
from ignite.engine import Engine, Events

from ctharmonize.engines.distributed import is_main_process

__all__ = ["GANTensorBoardHandler"]


class GANTensorBoardHandler:
    """Write scalars (and optionally images) of a GAN trainer to ``log_dir``; rank 0 only.

    - ``iteration/<loss>`` every ``log_every`` iterations (the trainer's ``state.output``),
    - ``epoch/<loss>`` epoch means (``state.metrics``) and ``lr/<optimizer>`` (the rate used in that epoch),
    - ``images/<name>`` every ``image_every`` epochs (0 = never): the first sample of each generated image of
      the last iteration (3-D volumes: middle slice), mapped from [-1, 1] to [0, 1].
    """

    def __init__(self, log_dir: str | os.PathLike, log_every: int = 10, image_every: int = 0):
        self.log_dir = os.fspath(log_dir)
        self.log_every = max(1, int(log_every))
        self.image_every = int(image_every)
        self.writer: Any = None

    def attach(self, engine: Engine) -> None:
        if not is_main_process():
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=self.log_dir)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.log_every), self.log_iteration)
        engine.add_event_handler(Events.EPOCH_STARTED, self.log_learning_rates)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.log_epoch)
        engine.add_event_handler(Events.COMPLETED, self.close)

    def log_iteration(self, engine: Engine) -> None:
        for name, value in (engine.state.output or {}).items():
            self.writer.add_scalar(f"iteration/{name}", float(value), engine.state.iteration)

    def log_learning_rates(self, engine: Engine) -> None:
        for name, opt in getattr(engine, "optimizers", {}).items():
            self.writer.add_scalar(f"lr/{name}", opt.param_groups[0]["lr"], engine.state.epoch)

    def log_epoch(self, engine: Engine) -> None:
        for name, value in engine.state.metrics.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"epoch/{name}", value, engine.state.epoch)
        if self.image_every > 0 and engine.state.epoch % self.image_every == 0:
            for name, image in (getattr(engine.state, "fakes", None) or {}).items():
                self.writer.add_image(f"images/{name}", self._to_display(image), engine.state.epoch, dataformats="HW")
        self.writer.flush()

    @staticmethod
    def _to_display(image: torch.Tensor) -> torch.Tensor:
        img = image[0, 0].detach().float().cpu()  # first sample, first channel
        while img.ndim > 2:
            img = img[img.shape[0] // 2]
        return ((img.clamp(-1, 1) + 1) / 2).numpy()

    def close(self, engine: Engine | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
