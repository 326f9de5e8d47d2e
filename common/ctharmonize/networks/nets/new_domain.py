"""Two-stage "add a kernel" training of the multipath cycleGAN (Krishnan et al. 2025)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ctharmonize.networks.nets.multipath_discriminators import MultipathDiscriminators
from ctharmonize.networks.nets.multipath_generator import MultipathGenerator

__all__ = ["add_new_domain", "trainable_parameters_for_new_domain"]


def trainable_parameters_for_new_domain(
    generator: MultipathGenerator, discriminators: MultipathDiscriminators | None, domains: Sequence[str] | str
) -> list[nn.Parameter]:
    """Freeze the shared latent and all other domains; return the new domains' G and D parameters.

    Stage two of the authors' scheme: only the new kernels' encoders, decoders and discriminators
    train; the stage-one kernels and the shared latent stay fixed.
    """
    params = generator.freeze_except(domains)
    if discriminators is not None:
        params += discriminators.freeze_except(domains)
    return params


def add_new_domain(
    generator: MultipathGenerator, discriminators: MultipathDiscriminators | None, name: str
) -> list[nn.Parameter]:
    """Add kernel ``name`` to both networks, freeze everything else, return the trainable parameters."""
    generator.add_domain(name)
    if discriminators is not None:
        discriminators.add_domain(name)
    return trainable_parameters_for_new_domain(generator, discriminators, [name])
