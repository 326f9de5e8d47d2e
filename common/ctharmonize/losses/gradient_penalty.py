"""WGAN-GP gradient penalty (Gulrajani et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["gradient_penalty"]


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    lambda_gp: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``lambda_gp · mean_b (‖∇ₓ C(x̂_b)‖₂ − 1)²`` at ``x̂ = α·real + (1 − α)·fake``, α ~ U(0, 1) per sample.

    ``real``/``fake``: (B, ...) images in the critic's input space (network space, [-1, 1] for CT; fake is
    detached here). The critic output may be a patch map;
    its sum is differentiated, so each sample's gradient is that of its own scores. The result
    keeps the graph (``create_graph=True``) so it trains the critic. Paper 001 uses λ = 10.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} shapes differ")
    fake = fake.detach()
    alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(alpha_shape, generator=generator, dtype=real.dtype, device="cpu").to(real.device)
    mixed = (alpha * real.detach() + (1.0 - alpha) * fake).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = torch.linalg.vector_norm(grad.flatten(1), 2.0, dim=1)
    return lambda_gp * ((norms - 1.0) ** 2).mean()
