"""``MTFHarmonizerTrainer``: pix2pix-style conditional WGAN-GP training of paper 001's MTF-conditioned harmonizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ctharmonize.engines.gan_trainer import GANTrainer
from ctharmonize.errors import ConfigError
from ctharmonize.losses.gradient_penalty import gradient_penalty
from ctharmonize.losses.mtf_harmonizer_loss import MTFHarmonizerLoss

__all__ = ["MTFHarmonizerTrainer", "mtf_harmonizer_optimizers"]


def mtf_harmonizer_optimizers(generator: nn.Module, critic: nn.Module, lr: float = 1e-4,
                              betas: Sequence[float] = (0.5, 0.9)) -> dict[str, torch.optim.Adam]:
    """``{"G": Adam(generator), "D": Adam(critic)}`` with the same settings (paper 001: Adam, base LR 1e-4;
    betas open, spec: WGAN-GP's (0.5, 0.9))."""
    b = (float(betas[0]), float(betas[1]))
    return {"G": torch.optim.Adam(generator.parameters(), lr=float(lr), betas=b),
            "D": torch.optim.Adam(critic.parameters(), lr=float(lr), betas=b)}


class MTFHarmonizerTrainer(GANTrainer):
    """Paper 001 training (eqs. 4–8): generator ``"G"`` = ``MTFHarmonizer(x, mtf2d)``, critic ``"D"`` on
    ``cat(I_nh, image)``.

    Batches: dicts (e.g. :class:`~ctharmonize.datasets.MTFPairedSlices`) with ``image_key`` I_nh
    (B, 1, H, W) in [-1, 1], ``target_key`` the ground truth I_r (B, 1, H, W) in [-1, 1], ``mtf_key``
    MTF2D (B, 1, 64, 64) and ``mask_key`` the GT lung mask (B, 1, H, W).

    ``forward``: ``fake = G(I_nh, MTF2D)`` → ``{"fake": I_h}``.

    Generator terms (unweighted; weights ``loss_weights``, default the ``loss``'s λ: distance 1000,
    texture 50, adversarial 1; a weight 0 skips the term): ``distance`` = ``HuberLoss(δ=0.5)(I_h, I_r)``,
    ``texture`` = masked Gram loss (:class:`~ctharmonize.losses.MaskedGramTextureLoss` of ``loss``),
    ``adversarial`` = ``−E[D(cat(I_nh, I_h))]`` (:class:`~ctharmonize.losses.ConditionalWGANGP`).
    ``G/total`` = Σ weight · term.

    Critic terms of ``"D"`` (weights ``discriminator_loss_weights``; ``gp`` default the loss's λ_GP = 10,
    the others 1): ``real`` = ``−E[D(cat(I_nh, I_r))]``, ``fake`` = ``E[D(cat(I_nh, I_h))]`` (I_h
    detached), ``gp`` = unweighted ``E[(‖∇D(Ĩ)‖₂ − 1)²]`` over the 2-channel interpolate; their weighted
    sum is exactly :meth:`ConditionalWGANGP.critic_loss`. WGAN-GP: the critic's output is linear (no
    sigmoid, e.g. :class:`~ctharmonize.networks.PatchDiscriminator` ``(in_channels=2, n_layers=3)``: five
    4×4 convs, InstanceNorm, no BatchNorm).

    Defaults (spec papers_001_002 §3): ``adversarial="wgan-gp"`` (the only mode accepted),
    ``generator_every=5`` (n_critic; the critic steps every iteration, the generator every 5th),
    ``grad_clip_norm=1.0`` ("gradient normalization", ``clip_grad_norm_`` on each optimizer),
    ``scheduler_interval="iteration"`` (for :func:`~ctharmonize.engines.cyclic_lr_schedulers`). The
    texture loss's feature network becomes the auxiliary network ``"texture_network"`` (on the device,
    frozen, eval mode, not checkpointed). Other args: see :class:`GANTrainer`.
    """

    GENERATOR = "G"
    CRITIC = "D"
    TEXTURE_NETWORK = "texture_network"

    def __init__(
        self,
        *args: Any,
        loss: MTFHarmonizerLoss | None = None,
        loss_weights: Mapping[str, float] | None = None,
        discriminator_loss_weights: Mapping[str, float] | None = None,
        gp_weight: float | None = None,
        adversarial: str = "wgan-gp",
        generator_every: int = 5,
        grad_clip_norm: float | None = 1.0,
        scheduler_interval: str = "iteration",
        auxiliary: Mapping[str, nn.Module] | None = None,
        image_key: str = "source",
        target_key: str = "target",
        mtf_key: str = "mtf2d",
        mask_key: str = "lung",
        **kwargs: Any,
    ):
        if adversarial != "wgan-gp":
            raise ConfigError(None, f"MTFHarmonizerTrainer trains a WGAN-GP critic (paper 001); got adversarial={adversarial!r}")
        loss = MTFHarmonizerLoss() if loss is None else loss
        weights = {**loss.weights, **dict(loss_weights or {})}
        d_weights = dict(discriminator_loss_weights or {})
        if gp_weight is None and "gp" not in d_weights:
            gp_weight = loss.adversarial.lambda_gp
        auxiliary = dict(auxiliary or {})
        if self.TEXTURE_NETWORK in auxiliary:
            raise ConfigError(None, f"auxiliary[{self.TEXTURE_NETWORK!r}] is the loss's texture network; give it "
                                    "through loss=MTFHarmonizerLoss(texture_loss=...)")
        if weights.get("texture", 0.0) != 0.0:
            auxiliary[self.TEXTURE_NETWORK] = loss.texture.features
        super().__init__(*args, loss_weights=weights, discriminator_loss_weights=d_weights, gp_weight=gp_weight,
                         adversarial=adversarial, generator_every=generator_every, grad_clip_norm=grad_clip_norm,
                         scheduler_interval=scheduler_interval, auxiliary=auxiliary, **kwargs)
        if self.GENERATOR not in self.generators or self.CRITIC not in self.discriminators:
            raise ConfigError(None, f"MTFHarmonizerTrainer needs generators {{{self.GENERATOR!r}: MTFHarmonizer}} and "
                                    f"discriminators {{{self.CRITIC!r}: critic}}; got {sorted(self.generators)}, "
                                    f"{sorted(self.discriminators)}")
        self.loss = loss.to(self.state.device)
        self.keys = {"image": image_key, "target": target_key, "mtf": mtf_key, "mask": mask_key}

    def _get(self, batch: Any, what: str) -> torch.Tensor:
        key = self.keys[what]
        try:
            return batch[key]
        except (KeyError, TypeError) as err:
            raise ConfigError(None, f"MTFHarmonizerTrainer batches must be dicts with keys "
                                    f"{sorted(self.keys.values())}; missing {key!r}") from err

    # ------------------------------------------------------------------ hooks
    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """``{"fake": G(I_nh, MTF2D)}``, (B, 1, H, W)."""
        return {"fake": self.generators[self.GENERATOR](self._get(batch, "image"), self._get(batch, "mtf"))}

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        condition, target = self._get(batch, "image"), self._get(batch, "target")
        fake = fakes["fake"].float()
        terms = {"distance": self.loss.huber(fake, target.float())}
        if self.loss_weight("texture") != 0:
            terms["texture"] = self.loss.texture(fake, target.float(), self._get(batch, "mask"))
        if self.loss_weight("adversarial") != 0:
            critic = self.get_network(self.CRITIC)  # frozen during this step
            terms["adversarial"] = self.loss.adversarial.generator_loss(critic, condition, fakes["fake"])
        return terms

    def discriminator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        condition, target = self._get(batch, "image"), self._get(batch, "target")
        wgan = self.loss.adversarial
        real_pair = wgan.pair(condition, target)
        fake_pair = wgan.pair(condition, fakes["fake"].detach().to(target.dtype))
        critic = self.discriminators[self.CRITIC]
        terms = {"real": wgan.wgan(critic(real_pair), True), "fake": wgan.wgan(critic(fake_pair), False)}
        if self.discriminator_loss_weight(self.CRITIC, "gp") != 0:
            terms["gp"] = gradient_penalty(self.get_network(self.CRITIC), real_pair, fake_pair, 1.0)
        return {self.CRITIC: terms}
