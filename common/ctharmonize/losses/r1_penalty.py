"""R1 gradient penalty on real data (Mescheder et al. 2018, "Which training methods for GANs do actually converge?")."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["r1_penalty"]


def r1_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    gamma: float = 1.0,
) -> torch.Tensor:
    """``gamma / 2 · mean_b ‖∇ₓ D(x_b)‖₂²`` at the real samples ``x = real``.

    ``real``: (B, ...) images in the critic's input space ([-1, 1] for CT); a detached copy is
    differentiated, so ``real`` itself is untouched. The critic output may be a patch map; its sum is
    differentiated, so each sample's gradient is that of its own scores (StarGAN v2's ``r1_reg``, there
    with gamma = 1). The result keeps the graph (``create_graph=True``) so it trains the critic.
    """
    x = real.detach().requires_grad_(True)
    scores = critic(x)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return 0.5 * float(gamma) * grad.flatten(1).pow(2).sum(1).mean()
