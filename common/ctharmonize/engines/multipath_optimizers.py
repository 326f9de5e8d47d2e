"""The multipath cycleGAN's optimizers: one Adam for the generator, one per trainable discriminator (paper 000)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ["multipath_optimizers"]


def multipath_optimizers(
    generator: nn.Module,
    discriminators: Mapping[str, nn.Module],
    lr: float = 2e-3,
    betas: Sequence[float] = (0.5, 0.999),
    generator_group: str = "G",
    discriminator_prefix: str = "D_",
) -> dict[str, torch.optim.Optimizer]:
    """``{"G": Adam(trainable generator parameters), "D_<domain>": Adam(trainable parameters of D[domain])}``.

    ``discriminators`` is keyed by domain (e.g. a ``MultipathDiscriminators``). Only parameters with
    ``requires_grad`` are optimized; a discriminator without any (an old kernel in stage two, see
    :func:`~ctharmonize.engines.prepare_new_domains`) gets no optimizer: it is a fixed critic. Paper 000:
    lr 2e-3, betas (0.5, 0.999). The group names are those :class:`MultipathCycleGANTrainer` expects.
    """
    betas = (float(betas[0]), float(betas[1]))
    optimizers = {generator_group: torch.optim.Adam([p for p in generator.parameters() if p.requires_grad],
                                                    lr=lr, betas=betas)}
    for domain, module in discriminators.items():
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            optimizers[f"{discriminator_prefix}{domain}"] = torch.optim.Adam(params, lr=lr, betas=betas)
    return optimizers
