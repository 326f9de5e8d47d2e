"""``CVSCTTrainer``: CycleGAN plus the CVS-CT Gram-matrix "domain loss" on a frozen feature network (paper 002)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ctharmonize.engines.cyclegan_trainer import CycleGANTrainer
from ctharmonize.errors import ConfigError
from ctharmonize.losses.gram_style import GramStyleLoss

__all__ = ["CVSCTTrainer"]


class CVSCTTrainer(CycleGANTrainer):
    """:class:`CycleGANTrainer` with the domain loss of CVS-CT (paper 002, eqs. 1-3).

    Extra generator terms (weight ``loss_weights["domain"]``, or ``"domain_A"``/``"domain_B"``):
    ``domain_B`` (the paper's L_fA) = :class:`GramStyleLoss` (``normalize="size"``: Gram ``F Fᵀ/(C·H·W)``, MSE over the
    C×C entries and the batch, summed over the feature maps) between ``feature_network(fake_B)``,
    ``fake_B = G_AB(a)``, and ``feature_network(b)``, the batch's real, *unpaired* B images (eq. 1);
    ``domain_A`` (L_fB) likewise for ``fake_A = G_BA(b)`` against the real A images (eq. 2). Sample i of the
    fakes is compared with sample i of the real target batch.

    ``feature_network``: any module mapping images (B, C, H, W) to a list of (B, C_l, H_l, W_l) maps, e.g.
    :class:`~ctharmonize.networks.VGGFeatures` (paper: VGG "style" layers, spec: VGG-19 relu4_1 +
    relu5_1) or a CT-trained feature net. It becomes the auxiliary network ``"feature_network"``: moved
    to the device, frozen (``requires_grad=False``), kept in eval mode, never optimized (an optimizer
    holding its parameters is a ``ConfigError``), not saved in checkpoints (it comes from the config;
    ``checkpoint_auxiliary`` can still ask for it). Gradients flow through it to the generators. It sees
    the images as the batch holds them (usually [-1, 1]; VGGFeatures maps [-1, 1] to ImageNet input
    itself); override :meth:`feature_input` for another input mapping.

    The default domain weight is 0: without ``loss_weights["domain"]`` the trainer is exactly a
    :class:`CycleGANTrainer` (the CVS-CT² ablation: CVS-CT networks, CycleGAN losses), and
    ``feature_network=None`` is allowed only then. The paper gives λ ∈ [0, 1] only;
    :attr:`PAPER_WEIGHTS` holds the spec's suggested values (cycle 1, identity 0.5, domain 1).
    Other args: see :class:`CycleGANTrainer` / :class:`GANTrainer`.
    """

    DEFAULT_WEIGHTS = {**CycleGANTrainer.DEFAULT_WEIGHTS, "domain": 0.0}
    #: spec's suggestion for paper 002 (its eq. 8 weights λ1, λ2, λ3 are not given)
    PAPER_WEIGHTS = {"adv": 1.0, "cycle": 1.0, "identity": 0.5, "domain": 1.0}
    FEATURE_NETWORK = "feature_network"

    def __init__(
        self,
        *args: Any,
        feature_network: nn.Module | None = None,
        auxiliary: Mapping[str, nn.Module] | None = None,
        **kwargs: Any,
    ):
        auxiliary = dict(auxiliary or {})
        if feature_network is not None:
            if self.FEATURE_NETWORK in auxiliary:
                raise ConfigError(
                    None, f"give the feature network once: feature_network or auxiliary[{self.FEATURE_NETWORK!r}]"
                )
            auxiliary[self.FEATURE_NETWORK] = feature_network
        super().__init__(*args, auxiliary=auxiliary, **kwargs)
        self.domain_loss = GramStyleLoss(normalize="size")
        if self.uses_domain_loss and self.FEATURE_NETWORK not in self.auxiliary:
            raise ConfigError(None, "CVSCTTrainer: a non-zero 'domain' loss weight needs a feature_network")

    @property
    def uses_domain_loss(self) -> bool:
        """Whether ``domain_A`` or ``domain_B`` has a non-zero weight."""
        return self.loss_weight("domain_A") != 0 or self.loss_weight("domain_B") != 0

    def feature_input(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Image of ``domain`` (``"A"``/``"B"``) as the feature network gets it; default unchanged."""
        return x

    def features(self, x: torch.Tensor, domain: str) -> list[torch.Tensor]:
        """Feature maps of ``x`` (an image of ``domain``) from the frozen feature network (a single map
        returned as a tensor counts as a one-element list)."""
        maps = self.auxiliary[self.FEATURE_NETWORK](self.feature_input(x, domain))
        return [maps] if isinstance(maps, torch.Tensor) else list(maps)

    def domain_term(self, fake: torch.Tensor, real: torch.Tensor, domain: str) -> torch.Tensor:
        """Unweighted domain loss of generated images ``fake`` against unpaired real images ``real`` of ``domain``."""
        with torch.no_grad():  # real images need no gradient
            target = self.features(real, domain)
        return self.domain_loss(self.features(fake, domain), target)

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms = super().generator_step(batch, fakes)
        if self.uses_domain_loss:
            real_a, real_b = self._images(batch)
            terms["domain_A"] = self.domain_term(fakes["fake_A"], real_a, "A")
            terms["domain_B"] = self.domain_term(fakes["fake_B"], real_b, "B")
        return terms
