"""``CycleGANTrainer``: the reference :class:`GANTrainer` variant (Zhu et al. 2017), the plain CycleGAN baseline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ctharmonize.engines.gan_trainer import GANTrainer
from ctharmonize.errors import ConfigError

__all__ = ["CycleGANTrainer"]


class CycleGANTrainer(GANTrainer):
    """Unpaired translation between domains A and B with two generators and two discriminators.

    Networks (fixed names): generators ``G_AB`` (A → B) and ``G_BA`` (B → A); discriminators ``D_A``
    (real A vs generated A) and ``D_B``. Batches are dicts holding ``image_key_a`` and ``image_key_b``
    images (B, C, H, W) (or (B, C, D, H, W)), usually in [-1, 1].

    Generator terms (weighted through ``loss_weights``, defaults below, paper 000 / CycleGAN):
    ``adv_A`` = adversarial(D_A(G_BA(b))), ``adv_B``; ``cycle_A`` = |G_BA(G_AB(a)) - a|_1, ``cycle_B``
    (weight ``cycle`` = 10); ``identity_A`` = |G_BA(a) - a|_1, ``identity_B`` = |G_AB(b) - b|_1
    (weight ``identity``, default 0 = off; CycleGAN uses 0.5 * 10 = 5).
    Discriminators see generated images through a 50-image :class:`ImagePool` each.

    Every generator call goes through :meth:`translate` (forward, cycle and identity terms), so a
    conditional variant (``G(x, segmentation)``, ``G(x, style)``) overrides that one method.
    Other args: see :class:`GANTrainer`.
    """

    DEFAULT_WEIGHTS = {"adv": 1.0, "cycle": 10.0, "identity": 0.0}

    def __init__(
        self,
        *args: Any,
        image_key_a: str = "A",
        image_key_b: str = "B",
        loss_weights: Mapping[str, float] | None = None,
        **kwargs: Any,
    ):
        weights = {**self.DEFAULT_WEIGHTS, **(loss_weights or {})}
        super().__init__(*args, loss_weights=weights, **kwargs)
        missing = {"G_AB", "G_BA"} - set(self.generators) | {"D_A", "D_B"} - set(self.discriminators)
        if missing:
            raise ConfigError(None, f"CycleGANTrainer needs networks G_AB, G_BA, D_A, D_B; missing {sorted(missing)}")
        self.image_key_a = image_key_a
        self.image_key_b = image_key_b
        for name in ("D_A", "D_B"):
            self.image_pool(name)  # created now so that a resume restores them

    def _images(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return batch[self.image_key_a], batch[self.image_key_b]
        except (KeyError, TypeError) as err:
            raise ConfigError(
                None, f"CycleGAN batches must be dicts with keys {self.image_key_a!r} and {self.image_key_b!r}"
            ) from err

    def translate(self, x: torch.Tensor, source: str, target: str, batch: Any) -> torch.Tensor:
        """Translate ``x`` (B, C, ...) from domain ``source`` to ``target`` (``"A"``/``"B"``) with the training
        (DDP-wrapped) generator ``G_<source><target>``. ``batch`` (the prepared batch) is there for
        conditional variants. The identity terms call it with the image's own domain as target:
        ``translate(a, "B", "A", batch)`` = ``G_BA(a)``."""
        return self.generators[f"G_{source}{target}"](x)

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """``fake_B = G_AB(A)``, ``rec_A = G_BA(fake_B)``, ``fake_A = G_BA(B)``, ``rec_B = G_AB(fake_A)``
        (through :meth:`translate`)."""
        real_a, real_b = self._images(batch)
        fakes = {"fake_B": self.translate(real_a, "A", "B", batch), "fake_A": self.translate(real_b, "B", "A", batch)}
        fakes["rec_A"] = self.translate(fakes["fake_B"], "B", "A", batch)
        fakes["rec_B"] = self.translate(fakes["fake_A"], "A", "B", batch)
        return fakes

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_a, real_b = self._images(batch)
        terms = {
            "adv_A": self.adversarial_loss("D_A", fakes["fake_A"]),
            "adv_B": self.adversarial_loss("D_B", fakes["fake_B"]),
            "cycle_A": F.l1_loss(fakes["rec_A"].float(), real_a.float()),
            "cycle_B": F.l1_loss(fakes["rec_B"].float(), real_b.float()),
        }
        if self.loss_weight("identity_A") or self.loss_weight("identity_B"):
            terms["identity_A"] = F.l1_loss(self.translate(real_a, "B", "A", batch).float(), real_a.float())
            terms["identity_B"] = F.l1_loss(self.translate(real_b, "A", "B", batch).float(), real_b.float())
        return terms

    def discriminator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        real_a, real_b = self._images(batch)
        return {
            "D_A": self.discriminator_terms("D_A", real_a, self.image_pool("D_A").query(fakes["fake_A"])),
            "D_B": self.discriminator_terms("D_B", real_b, self.image_pool("D_B").query(fakes["fake_B"])),
        }
