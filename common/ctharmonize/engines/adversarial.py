"""Adversarial objectives selectable by name: ``"lsgan"``, ``"vanilla"`` and ``"wgan-gp"``.

A thin adapter over :mod:`ctharmonize.losses` (``LSGANLoss``, ``WGANGPLoss``, ``gradient_penalty``)
so that every trainer variant switches objective with one config string. Discriminator outputs may be
a tensor (PatchGAN map, any shape) or a list of tensors (multi-scale discriminators; the per-scale
losses are averaged). Images fed to discriminators are in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.errors import ConfigError
from ctharmonize.losses import LSGANLoss, WGANGPLoss
from ctharmonize.losses import gradient_penalty as _gradient_penalty
from ctharmonize.losses import r1_penalty as _r1_penalty

__all__ = [
    "ADVERSARIAL_MODES",
    "check_adversarial_mode",
    "discriminator_adversarial_terms",
    "discriminator_r1_penalty",
    "generator_adversarial_loss",
    "gradient_penalty",
]

ADVERSARIAL_MODES = ("lsgan", "vanilla", "wgan-gp")

Prediction = torch.Tensor | Sequence[torch.Tensor]


class _VanillaLoss(nn.Module):
    """Original GAN loss: binary cross-entropy on logits against 1 (real) or 0 (fake)."""

    def forward(self, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, float(target_is_real)))


_LOSSES: dict[str, nn.Module] = {"lsgan": LSGANLoss(), "vanilla": _VanillaLoss(), "wgan-gp": WGANGPLoss()}


def check_adversarial_mode(mode: str) -> str:
    """Return ``mode`` lower-cased, or raise a one-line ``ConfigError`` naming the allowed modes."""
    mode = str(mode).lower()
    if mode not in ADVERSARIAL_MODES:
        raise ConfigError(None, f"adversarial mode {mode!r} is not one of {', '.join(ADVERSARIAL_MODES)}")
    return mode


def _loss(pred: Prediction, target_is_real: bool, mode: str) -> torch.Tensor:
    preds = [pred] if isinstance(pred, torch.Tensor) else list(pred)
    fn = _LOSSES[check_adversarial_mode(mode)]
    return torch.stack([fn(p.float(), target_is_real) for p in preds]).mean()


def generator_adversarial_loss(fake_pred: Prediction, mode: str) -> torch.Tensor:
    """Generator term: make the discriminator call fakes real.

    lsgan: ``mean((D(fake) - 1)^2)``; vanilla: BCE-with-logits against 1; wgan-gp: ``-mean(D(fake))``.
    """
    return _loss(fake_pred, True, mode)


def discriminator_adversarial_terms(real_pred: Prediction, fake_pred: Prediction, mode: str) -> dict[str, torch.Tensor]:
    """Discriminator terms ``{"real": ..., "fake": ...}`` (their sum is the loss).

    lsgan / vanilla as in CycleGAN: ``0.5 * loss(D(real), 1)`` and ``0.5 * loss(D(fake), 0)``.
    wgan-gp: ``-mean(D(real))`` and ``mean(D(fake))`` (add :func:`gradient_penalty` separately).
    """
    factor = 1.0 if check_adversarial_mode(mode) == "wgan-gp" else 0.5
    return {"real": factor * _loss(real_pred, True, mode), "fake": factor * _loss(fake_pred, False, mode)}


Discriminator = Callable[..., Prediction]


def _critic(discriminator: Discriminator, condition: Sequence[torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> D(x, *condition)`` as one float32 tensor (B, N) (multi-scale outputs concatenated)."""

    def critic(x: torch.Tensor) -> torch.Tensor:
        pred = discriminator(x, *condition)
        preds = [pred] if isinstance(pred, torch.Tensor) else list(pred)
        return torch.cat([p.float().reshape(p.shape[0], -1) for p in preds], 1)

    return critic


def gradient_penalty(
    discriminator: Discriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    condition: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """``weight * mean((||grad D(x_hat, *condition)||_2 - 1)^2)`` (:func:`ctharmonize.losses.gradient_penalty`).

    Run in float32 with autocast disabled, so fp16 training cannot overflow the double backward;
    multi-scale outputs are summed. ``real``/``fake``: (B, C, ...) in [-1, 1]; ``condition``: extra
    discriminator inputs (not interpolated, e.g. the domain label of a StarGAN v2 critic); keeps the graph.
    """
    with torch.autocast(device_type=real.device.type, enabled=False):
        return _gradient_penalty(_critic(discriminator, condition), real.float(), fake.float(), lambda_gp=weight)


def discriminator_r1_penalty(
    discriminator: Discriminator,
    real: torch.Tensor,
    gamma: float = 1.0,
    condition: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """``gamma / 2 * mean_b ||grad_x D(x_b, *condition)||^2`` at real ``x`` (:func:`ctharmonize.losses.r1_penalty`).

    Float32 with autocast disabled, multi-scale outputs summed, as :func:`gradient_penalty`; keeps the graph.
    """
    with torch.autocast(device_type=real.device.type, enabled=False):
        return _r1_penalty(_critic(discriminator, condition), real.float(), gamma)
