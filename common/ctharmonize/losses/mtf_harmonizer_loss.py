"""Paper 001's generator objective L_H = λd·L_d + λa·L_a + λt·L_t (eq. 8) and its weights."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ctharmonize.losses.conditional_wgan_gp import ConditionalWGANGP
from ctharmonize.losses.masked_gram_texture import MaskedGramTextureLoss

__all__ = ["MTF_HARMONIZER_LOSS_WEIGHTS", "MTFHarmonizerLoss"]

#: paper 001's constants, the defaults a trainer reads: λd = 1000, λt = 50, λa = 1 ("empirically
#: determined"), the Huber threshold δ = 0.5 (eq. 4) and the critic's λ_GP = 10 (eq. 5)
MTF_HARMONIZER_LOSS_WEIGHTS: dict[str, float] = {
    "distance": 1000.0,
    "texture": 50.0,
    "adversarial": 1.0,
    "huber_delta": 0.5,
    "gradient_penalty": 10.0,
}


class MTFHarmonizerLoss(nn.Module):
    """The generator loss of paper 001; ``forward(...)`` → dict of the weighted terms and ``"total"``.

    ``forward(critic, condition, fake, target, lung_mask)``: I_nh, I_h, I_r (B, 1, H, W) in [-1, 1],
    the GT lung mask (B, 1, H, W). Terms: ``"distance"`` = λd · ``nn.HuberLoss(delta=0.5)`` (mean over
    pixels, eq. 4; with δ = 0.5 ≈ 1024 HU it is L2 for nearly every pixel), ``"adversarial"`` = λa · L_a
    (:class:`ConditionalWGANGP`), ``"texture"`` = λt · L_t (:class:`MaskedGramTextureLoss`; pass
    ``texture_loss`` to use another feature network; its own weight is reset to 1). ``critic=None`` or
    λa = 0 skips the adversarial term (e.g. a pre-training phase). ``critic_loss`` is
    :meth:`ConditionalWGANGP.critic_loss` with λ_GP.
    """

    def __init__(self, distance: float = 1000.0, texture: float = 50.0, adversarial: float = 1.0,
                 huber_delta: float = 0.5, gradient_penalty: float = 10.0,
                 texture_loss: MaskedGramTextureLoss | None = None):
        super().__init__()
        self.weights = {"distance": float(distance), "texture": float(texture), "adversarial": float(adversarial)}
        self.huber = nn.HuberLoss(delta=huber_delta)
        self.adversarial = ConditionalWGANGP(lambda_gp=gradient_penalty)
        self.texture = texture_loss if texture_loss is not None else MaskedGramTextureLoss()
        self.texture.gram.weight = 1.0

    def critic_loss(self, critic: Callable[[torch.Tensor], torch.Tensor], condition: torch.Tensor,
                    real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.adversarial.critic_loss(critic, condition, real, fake)

    def forward(self, critic: Callable[[torch.Tensor], torch.Tensor] | None, condition: torch.Tensor,
                fake: torch.Tensor, target: torch.Tensor, lung_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {"distance": self.weights["distance"] * self.huber(fake, target)}
        if self.weights["texture"] != 0.0:
            terms["texture"] = self.weights["texture"] * self.texture(fake, target, lung_mask)
        if critic is not None and self.weights["adversarial"] != 0.0:
            terms["adversarial"] = self.weights["adversarial"] * self.adversarial.generator_loss(critic, condition, fake)
        total = terms["distance"]
        for name in ("texture", "adversarial"):
            if name in terms:
                total = total + terms[name]
        terms["total"] = total
        return terms
