"""Conditional (pix2pix) WGAN-GP of paper 001: the critic sees ``cat(I_nh, image)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ctharmonize.losses.gradient_penalty import gradient_penalty
from ctharmonize.losses.wgan import WGANGPLoss

__all__ = ["ConditionalWGANGP"]


class ConditionalWGANGP(nn.Module):
    """Paper 001 eqs. 5–6 on top of :class:`WGANGPLoss` and :func:`gradient_penalty` (no new maths).

    All images (B, 1, H, W) in [-1, 1]; ``condition`` is I_nh, ``fake`` I_h, ``real`` the GT I_r; the
    critic takes the 2-channel ``cat(condition, image)`` and returns any-shape scores (a patch map is
    averaged).

    - ``generator_loss(critic, condition, fake)`` = L_a = ``−E[D(cat(I_nh, I_h))]`` (the sign the text
      copy lost; the generator raises the critic's score of its output).
    - ``critic_loss(critic, condition, real, fake)`` = ``E[D(cat(I_nh, I_h))] − E[D(cat(I_nh, I_r))] +
      λ_GP · E[(‖∇D(Ĩ)‖₂ − 1)²]``, minimised; Ĩ interpolates the full 2-channel inputs with one α ~ U(0, 1)
      per sample (the I_nh channel is the same in both, so only the image channel moves); ``fake`` is
      detached. λ_GP = 10 (paper).
    """

    def __init__(self, lambda_gp: float = 10.0):
        super().__init__()
        self.lambda_gp = float(lambda_gp)
        self.wgan = WGANGPLoss()

    @staticmethod
    def pair(condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The critic's input ``cat(condition, image)`` → (B, 2, H, W)."""
        if condition.shape != image.shape:
            raise ValueError(f"condition {tuple(condition.shape)} and image {tuple(image.shape)} shapes differ")
        return torch.cat([condition, image], dim=1)

    def generator_loss(self, critic: Callable[[torch.Tensor], torch.Tensor], condition: torch.Tensor,
                       fake: torch.Tensor) -> torch.Tensor:
        return self.wgan(critic(self.pair(condition, fake)), True)

    def critic_loss(self, critic: Callable[[torch.Tensor], torch.Tensor], condition: torch.Tensor,
                    real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        real_pair = self.pair(condition, real)
        fake_pair = self.pair(condition, fake.detach())
        return (self.wgan(critic(real_pair), True) + self.wgan(critic(fake_pair), False)
                + gradient_penalty(critic, real_pair, fake_pair, self.lambda_gp, generator=generator))
