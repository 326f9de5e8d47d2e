"""``StarGANTrainer``: StarGAN v2 (Choi et al. 2020) with the optional multi-scale texture loss of paper 003.

One model for K kernel domains. Networks (fixed names): generator ``G(x, s)``, mapping network ``F(z, y)``,
style encoder ``E(x, y)`` (all three trained by the generator loss), multi-task discriminator ``D(x, y)``,
and, with the texture loss, its attention parameters as the generator-side network ``"texture"``.
``y`` are long domain indices in the order of ``domains``.

Per iteration (:meth:`StarGANTrainer.draw`, in ``prepare_batch``): the sources are every image of the batch,
``x`` (N = K·b, 1, H, W) with ``y_src`` its domain; each sample gets a target ``y_trg`` (≠ ``y_src`` by
default), latents ``z``, ``z2`` ~ N(0, I) and two references ``x_ref``, ``x_ref2`` of its target domain.
Then, in the engine's order (generators first, one step each)::

    latent:    s = F(z, y_trg),      s2 = F(z2, y_trg),     fake = G(x, s)
    reference: s = E(x_ref, y_trg),  s2 = E(x_ref2, y_trg), fake = G(x, s)
    G terms per mode m in {latent, ref}:
      adv_m = softplus(-D(fake, y_trg))                      non-saturating
      sty_m = |E(fake, y_trg) - s|_1
      ds_m  = -|fake - G(x, s2).detach()|_1                  weight lambda_ds, linear decay to 0
      cyc_m = |G(fake, E(x, y_src)) - x|_1
      txt_m = texture(x, G(fake, E(x, y_src)))              paper 003, weight 1 (0: baseline)
    idt   = |G(x, E(x, y_src)) - x|_1                        not in StarGAN v2 (weight 0 by default): HU kept
                                                             when the style is the input's own domain's
    D terms: real = softplus(-D(x, y_src)), fake_latent / fake_ref = softplus(D(fake, y_trg)), r1 (gamma 1)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.engines.gan_trainer import GANTrainer
from ctharmonize.errors import ConfigError

__all__ = ["TARGET_SAMPLING", "StarGANTrainer", "stargan_optimizers"]

TARGET_SAMPLING = ("other", "any")
MODES = ("latent", "ref")


def stargan_optimizers(
    generator: nn.Module,
    mapping_network: nn.Module,
    style_encoder: nn.Module,
    discriminator: nn.Module,
    texture_loss: nn.Module | None = None,
    lr: float = 1e-4,
    mapping_lr: float = 1e-6,
    betas: Sequence[float] = (0.0, 0.99),
    weight_decay: float = 1e-4,
) -> dict[str, torch.optim.Optimizer]:
    """StarGAN v2's optimizers: ``{"G", "F", "E", "D"}``, one Adam per network (its code's choice).

    Defaults (StarGAN v2 code; paper 003: lr 1e-4): lr 1e-4 for G, E and D, ``mapping_lr`` 1e-6 for F,
    betas (0, 0.99), weight decay 1e-4 (Adam's L2 form). The texture loss's attention parameters go into
    the GENERATOR's optimizer "G" (paper 003 authors' code). Only ``requires_grad`` parameters are given.
    """
    betas = (float(betas[0]), float(betas[1]))

    def adam(modules: Sequence[nn.Module], rate: float) -> torch.optim.Adam:
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=float(rate), betas=betas, weight_decay=float(weight_decay))

    g_modules = [generator] if texture_loss is None else [generator, texture_loss]
    return {
        "G": adam(g_modules, lr),
        "F": adam([mapping_network], mapping_lr),
        "E": adam([style_encoder], lr),
        "D": adam([discriminator], lr),
    }


class StarGANTrainer(GANTrainer):
    """StarGAN v2 training (paper 003's baseline) plus its multi-scale texture loss. See the module docstring.

    Networks: ``generators={"G": StarGANGenerator, "F": MappingNetwork, "E": StyleEncoder}`` (optionally
    ``"texture"``), ``discriminators={"D": MultiTaskDiscriminator}``; optimizers e.g. from
    :func:`stargan_optimizers` (every trainable parameter of G, F, E and the texture loss must be in a
    generator optimizer). Batches are dicts with ``image_key.format(domain=d)`` (b, 1, H, W) in [-1, 1] for
    every domain d, e.g. from :class:`~ctharmonize.datasets.UnalignedMultiDomainSlices` (one slice of every
    domain per item): an iteration translates all N = K·b images.

    Generator terms (weights ``loss_weights``, prefix rule of :meth:`GANTrainer.loss_weight`; defaults
    :attr:`DEFAULT_WEIGHTS`, StarGAN v2's λ_sty = λ_cyc = λ_ds = 1, paper 003's texture weight 1):
    ``adv_<m>``, ``sty_<m>``, ``ds_<m>`` (logged as −|fake − fake2|₁, so its weight λ_ds ≥ 0; weight
    ``ds`` × :meth:`ds_factor`), ``cyc_<m>``, ``txt_<m>`` for m ∈ {``latent``, ``ref``}, and ``idt`` =
    |G(x, E(x, y_src)) − x|₁ (once per iteration; weight 0 by default, i.e. StarGAN v2; the CycleGAN identity
    loss's analogue, a CT choice: the input's own style keeps its HU); the generator loss is their weighted sum
    (one step for both modes). Discriminator terms of ``"D"``
    (``discriminator_loss_weights``, defaults :attr:`DEFAULT_DISCRIMINATOR_WEIGHTS`): ``real``,
    ``fake_latent``, ``fake_ref`` (weight ``fake`` = ½: the D loss is the mean of StarGAN v2's two D losses,
    which share ``real`` and ``r1``) and ``r1`` (γ/2·E‖∇ₓD(x, y_src)‖², weight γ = λ_reg = 1). Losses are
    means over the N samples (and pixels / style dimensions).

    Args:
        domains: domain names in index order (index i ↔ ``domains[i]``); K ≥ 2, equal to the networks'
            ``num_domains``.
        texture_loss: a :class:`~ctharmonize.losses.MultiScaleTextureLoss` (its parameters in optimizer "G"),
            registered as the generator-side network ``"texture"`` (checkpointed, DDP-wrapped); or pass it as
            ``generators["texture"]``. Needed unless ``loss_weights["txt"]`` is 0 (the baseline StarGAN v2).
            Its own ``weight`` multiplies the ``txt`` weight (keep it 1). Runs in float32 (autocast off).
        ds_iter: iterations over which λ_ds decays linearly to 0 (StarGAN v2: 100000); None: constant.
        target_sampling: ``"other"`` (default, y_trg uniform over the K − 1 other domains: harmonization
            i ≠ j, paper 003 eq. 1) or ``"any"`` (uniform over all K, StarGAN v2's sampler).
        reference_trains_style_encoder: False (StarGAN v2): the reference-guided terms train G (and the
            texture attention) only; E is used with frozen parameters there. True: they train E too.
        image_key: batch key of a domain's images, formatted with ``domain``.
        Other args: see :class:`GANTrainer`; ``adversarial`` must be ``"vanilla"`` (the non-saturating
        loss), ``ema`` defaults to ``{"G": 0.999, "F": 0.999, "E": 0.999}`` (auxiliary ``G_ema``,
        ``F_ema``, ``E_ema``, checkpointed as ``ema/<name>``).
    """

    DEFAULT_WEIGHTS = {"adv": 1.0, "sty": 1.0, "ds": 1.0, "cyc": 1.0, "txt": 1.0, "idt": 0.0}
    DEFAULT_DISCRIMINATOR_WEIGHTS = {"real": 1.0, "fake": 0.5, "r1": 1.0}
    DEFAULT_EMA = {"G": 0.999, "F": 0.999, "E": 0.999}
    TEXTURE = "texture"
    #: keys :meth:`draw` adds to the prepared batch
    DRAWN_KEYS = ("x_real", "y_src", "y_trg", "z", "z2", "x_ref", "x_ref2")

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Any,
        generators: Mapping[str, nn.Module],
        discriminators: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        *,
        domains: Sequence[str],
        texture_loss: nn.Module | None = None,
        ds_iter: int | None = 100_000,
        target_sampling: str = "other",
        reference_trains_style_encoder: bool = False,
        image_key: str = "image_{domain}",
        loss_weights: Mapping[str, float] | None = None,
        discriminator_loss_weights: Mapping[str, float] | None = None,
        ema: Mapping[str, float] | None = None,
        adversarial: str = "vanilla",
        **kwargs: Any,
    ):
        self.domains = [str(d) for d in domains]
        if len(self.domains) < 2 or len(set(self.domains)) != len(self.domains):
            raise ConfigError(None, f"StarGANTrainer needs at least two distinct domains, got {list(domains)}")
        if target_sampling not in TARGET_SAMPLING:
            raise ConfigError(None, f"target_sampling must be one of {', '.join(TARGET_SAMPLING)}, got {target_sampling!r}")
        if ds_iter is not None and int(ds_iter) < 1:
            raise ConfigError(None, f"ds_iter must be a positive number of iterations or None, got {ds_iter}")
        if str(adversarial).lower() != "vanilla":
            raise ConfigError(None, f"StarGANTrainer uses the non-saturating loss: adversarial must be 'vanilla', "
                                    f"got {adversarial!r}")
        generators = dict(generators)
        if texture_loss is not None:
            if self.TEXTURE in generators:
                raise ConfigError(None, f"give the texture loss once: texture_loss or generators[{self.TEXTURE!r}]")
            generators[self.TEXTURE] = texture_loss
        missing = sorted({"G", "F", "E"} - set(generators))
        if missing:
            raise ConfigError(None, f"StarGANTrainer needs generators G, F, E; missing {missing}")
        extra = sorted(set(generators) - {"G", "F", "E", self.TEXTURE})
        if extra:
            raise ConfigError(None, f"StarGANTrainer: unknown generator-side networks {extra}")
        for name in ("F", "E"):
            k = getattr(generators[name], "num_domains", len(self.domains))
            if k != len(self.domains):
                raise ConfigError(None, f"network {name} has {k} domains but domains lists {len(self.domains)}")
        self.ds_iter = None if ds_iter is None else int(ds_iter)
        self.target_sampling = target_sampling
        self.reference_trains_style_encoder = bool(reference_trains_style_encoder)
        self.image_key = image_key
        super().__init__(
            device,
            max_epochs,
            train_data_loader,
            generators,
            discriminators,
            optimizers,
            loss_weights={**self.DEFAULT_WEIGHTS, **(loss_weights or {})},
            discriminator_loss_weights={**self.DEFAULT_DISCRIMINATOR_WEIGHTS, **(discriminator_loss_weights or {})},
            ema=dict(self.DEFAULT_EMA if ema is None else ema),
            adversarial="vanilla",
            **kwargs,
        )
        if set(self.discriminators) != {"D"}:
            raise ConfigError(None, f"StarGANTrainer needs one discriminator named D, got {sorted(self.discriminators)}")
        k = getattr(self.networks["D"], "num_domains", len(self.domains))
        if k != len(self.domains):
            raise ConfigError(None, f"network D has {k} domains but domains lists {len(self.domains)}")
        if self.uses_texture_loss and self.TEXTURE not in self.networks:
            raise ConfigError(None, "a non-zero 'txt' loss weight needs texture_loss (a MultiScaleTextureLoss, its "
                                    "parameters in optimizer G); loss_weights {'txt': 0} is the baseline StarGAN v2")
        self._check_generator_optimizers()
        latent_dim = getattr(self.networks["F"], "latent_dim", None)
        if latent_dim is None:
            raise ConfigError(None, "the mapping network F needs a latent_dim attribute (MappingNetwork has one)")
        self.latent_dim = int(latent_dim)
        self._styles: dict[str, torch.Tensor] = {}

    def _check_generator_optimizers(self) -> None:
        """Every trainable parameter of G, F, E and the texture loss sits in a generator optimizer."""
        held = {id(p) for g in self.generator_groups for pg in self.optimizers[g].param_groups for p in pg["params"]}
        for name in self.generators:
            if any(p.requires_grad and id(p) not in held for p in self.networks[name].parameters()):
                raise ConfigError(None, f"parameters of {name!r} are in no generator optimizer (see stargan_optimizers)")

    # ------------------------------------------------------------------ configuration helpers
    @property
    def uses_texture_loss(self) -> bool:
        """Whether ``txt_latent`` or ``txt_ref`` has a non-zero weight."""
        return any(self.loss_weight(f"txt_{m}") != 0 for m in MODES)

    def domain_index(self, domain: str) -> int:
        """Index of domain ``domain`` (the networks' ``y``)."""
        if domain not in self.domains:
            raise ConfigError(None, f"unknown domain {domain!r}; domains: {', '.join(self.domains)}")
        return self.domains.index(domain)

    def ds_factor(self, iteration: int | None = None) -> float:
        """λ_ds multiplier at ``iteration`` (1-based, default the current one): ``max(0, 1 − t / ds_iter)``
        with t = iteration − 1 completed iterations (StarGAN v2: λ_ds0 at the first iteration, 0 from
        iteration ds_iter + 1 on); 1 without ``ds_iter``."""
        if self.ds_iter is None:
            return 1.0
        it = self.state.iteration if iteration is None else iteration
        done = max(int(it or 0) - 1, 0)
        return max(0.0, 1.0 - done / self.ds_iter)

    def loss_weight(self, term: str) -> float:
        """:meth:`GANTrainer.loss_weight`, with the ``ds`` terms scaled by :meth:`ds_factor`."""
        weight = super().loss_weight(term)
        return weight * self.ds_factor() if term.split("_", 1)[0] == "ds" else weight

    # ------------------------------------------------------------------ batch
    def images(self, batch: Mapping[str, Any], domain: str) -> torch.Tensor:
        """Real images of ``domain``, (b, 1, H, W) in [-1, 1]."""
        key = self.image_key.format(domain=domain)
        try:
            return batch[key]
        except (KeyError, TypeError) as err:
            have = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ConfigError(None, f"StarGAN batches need key {key!r} for every domain (have {have})") from err

    def draw(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """This iteration's sources, targets, latents and references (torch's global CPU RNG, so a resume
        draws the same).

        Returns ``x_real`` (N, 1, H, W), N = K·b, the domains' images in ``domains`` order; ``y_src`` (N,)
        long, their domains; ``y_trg`` (N,) long; ``z``, ``z2`` (N, latent_dim) ~ N(0, I); ``x_ref``,
        ``x_ref2`` (N, 1, H, W): images of domain ``y_trg`` from the batch, at random positions that differ
        from each other when b > 1.
        """
        per_domain = [self.images(batch, d) for d in self.domains]
        shapes = {tuple(x.shape) for x in per_domain}
        if len(shapes) != 1:
            raise ConfigError(None, f"every domain's images must have one shape (b, C, H, W), got {sorted(shapes)}")
        stack = torch.stack(per_domain)  # (K, b, C, H, W)
        k, b = stack.shape[:2]
        device = stack.device
        y_src = torch.arange(k).repeat_interleave(b)
        n = y_src.numel()
        if self.target_sampling == "other":
            y_trg = (y_src + torch.randint(1, k, (n,))) % k
        else:
            y_trg = torch.randint(k, (n,))
        j1 = torch.randint(b, (n,))
        j2 = (j1 + torch.randint(1, b, (n,))) % b if b > 1 else j1
        z, z2 = torch.randn(n, self.latent_dim), torch.randn(n, self.latent_dim)
        y_trg_d, j1_d, j2_d = y_trg.to(device), j1.to(device), j2.to(device)
        return {
            "x_real": stack.reshape(n, *stack.shape[2:]),
            "y_src": y_src.to(device),
            "y_trg": y_trg_d,
            "z": z.to(device),
            "z2": z2.to(device),
            "x_ref": stack[y_trg_d, j1_d],
            "x_ref2": stack[y_trg_d, j2_d],
        }

    def prepare_batch(self, batch: Any) -> Any:
        """The batch on the device plus the keys of :meth:`draw` (:attr:`DRAWN_KEYS`)."""
        batch = super().prepare_batch(batch)
        if not isinstance(batch, Mapping):
            raise ConfigError(None, f"StarGAN batches must be dicts of per-domain images, got {type(batch).__name__}")
        return {**batch, **self.draw(batch)}

    # ------------------------------------------------------------------ networks
    @contextlib.contextmanager
    def reference_encoder(self) -> Iterator[nn.Module]:
        """The style encoder as the reference-guided terms use it: the training module, or (StarGAN v2,
        ``reference_trains_style_encoder=False``) the raw module with frozen parameters, so gradients reach
        its input (the generated image) but not its weights."""
        if self.reference_trains_style_encoder:
            yield self.generators["E"]
            return
        self.set_requires_grad(["E"], False)
        try:
            yield self.networks["E"]
        finally:
            self.set_requires_grad(["E"], True)

    def style(self, mode: str, batch: Mapping[str, torch.Tensor], second: bool = False) -> torch.Tensor:
        """Target style (N, style_dim): ``F(z, y_trg)`` (``"latent"``) or ``E(x_ref, y_trg)`` (``"ref"``);
        ``second``: from ``z2`` / ``x_ref2``."""
        if mode == "latent":
            return self.generators["F"](batch["z2" if second else "z"], batch["y_trg"])
        with self.reference_encoder() as encoder:
            return encoder(batch["x_ref2" if second else "x_ref"], batch["y_trg"])

    def texture_term(self, real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
        """Texture loss (float32, autocast off) between x and its cycle reconstruction, (N, 1, H, W) each."""
        with torch.autocast(device_type=real.device.type, enabled=False):
            return self.generators[self.TEXTURE](real.float(), reconstructed.float())

    # ------------------------------------------------------------------ hooks
    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """``fake_latent = G(x, F(z, y_trg))`` and ``fake_ref = G(x, E(x_ref, y_trg))``, (N, 1, H, W)."""
        g = self.generators["G"]
        self._styles = {m: self.style(m, batch) for m in MODES}
        return {f"fake_{m}": g(batch["x_real"], self._styles[m]) for m in MODES}

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        g = self.generators["G"]
        x, y_src, y_trg = batch["x_real"], batch["y_src"], batch["y_trg"]
        styles, self._styles = self._styles, {}
        s_org = self.generators["E"](x, y_src)  # E(x, y_src): the cycle's style
        terms: dict[str, torch.Tensor] = {}
        if self.loss_weight("idt") != 0:  # a CT choice, not StarGAN v2's: the own domain's style keeps x
            terms["idt"] = F.l1_loss(g(x, s_org).float(), x.float())
        for m in MODES:
            s, fake = styles[m], fakes[f"fake_{m}"]
            terms[f"adv_{m}"] = self.adversarial_loss("D", fake, y_trg)
            if m == "latent":
                s_pred = self.generators["E"](fake, y_trg)
                s_cycle = s_org
            else:
                with self.reference_encoder() as encoder:
                    s_pred = encoder(fake, y_trg)
                s_cycle = s_org if self.reference_trains_style_encoder else s_org.detach()
            terms[f"sty_{m}"] = F.l1_loss(s_pred.float(), s.float())
            if self.loss_weight(f"ds_{m}") != 0:  # skipped once λ_ds has decayed to 0
                with torch.no_grad():
                    fake2 = g(x, self.style(m, batch, second=True))
                terms[f"ds_{m}"] = -F.l1_loss(fake.float(), fake2.float())
            rec = g(fake, s_cycle)
            terms[f"cyc_{m}"] = F.l1_loss(rec.float(), x.float())
            if self.loss_weight(f"txt_{m}") != 0:
                terms[f"txt_{m}"] = self.texture_term(x, rec)
        return terms

    def discriminator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        d = self.discriminators["D"]
        x, y_src, y_trg = batch["x_real"], batch["y_src"], batch["y_trg"]
        terms = {"real": F.softplus(-d(x, y_src).float()).mean()}
        for m in MODES:
            terms[f"fake_{m}"] = F.softplus(d(fakes[f"fake_{m}"], y_trg).float()).mean()
        if self.discriminator_loss_weight("D", "r1") != 0:
            terms["r1"] = self.r1_penalty("D", x, y_src)
        return {"D": terms}
