"""``MultipathCycleGANTrainer``: paper 000's multipath cycleGAN (shared latent, one encoder/decoder/PatchGAN per
kernel) with anatomical guidance, as a :class:`~ctharmonize.engines.GANTrainer` variant; plus the two-stage
"add a kernel" set-up (Krishnan et al. 2025).

Per iteration one path (source s, target t) is drawn (or every configured path is run):

* forward path:  ``fake_t = G(x_s, s, t)``, ``rec_s = G(fake_t, t, s)``;
* backward path: ``fake_s = G(x_t, t, s)``, ``rec_t = G(fake_s, s, t)``.

Generator terms (images in [-1, 1]; weighted through ``loss_weights`` by the prefix before ``_``):

* ``adv_<s>_to_<t>`` = LSGAN ``mean((D_t(fake_t) - 1)^2)`` (and ``adv_<t>_to_<s>``), weight ``adv`` = 1;
* ``cycle_<s>_to_<t>`` = ``mean|rec_s - x_s|`` (and ``cycle_<t>_to_<s>``), weight ``cycle`` = 10;
* ``tissue_<s>_to_<t>`` (guidance "tissue") = MSE between per-label mean intensities of x_s and fake_t over
  x_s's tissue map (``TissueStatisticLoss``), weight ``tissue`` = 0.01;
* ``identity_<s>_to_<t>`` (guidance "identity", the model "without guidance") = MSE between 2x2
  average-pooled x_s and fake_t (``DownsampledIdentityLoss``), weight ``identity`` = 1.

Discriminator ``D_<d>`` (one PatchGAN per domain, decided by the TARGET domain) sees real slices of d against
every image translated into d that iteration, through its 50-image pool (LSGAN, 0.5 per term).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from ignite.engine import Events
from torch import nn

from ctharmonize.engines.adversarial import generator_adversarial_loss
from ctharmonize.engines.gan_trainer import GANTrainer
from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.io.weights_file import load_weights_file
from ctharmonize.losses import DownsampledIdentityLoss, TissueStatisticLoss

__all__ = ["GUIDANCE_MODES", "MultipathCycleGANTrainer", "initialize_from", "load_generator_state", "prepare_new_domains"]

GUIDANCE_MODES = ("tissue", "identity", "none")
logger = logging.getLogger(__name__)


class MultipathCycleGANTrainer(GANTrainer):
    """Multipath cycleGAN training (paper 000). See the module docstring for the losses.

    Networks: ``generators={generator: MultipathGenerator}``; ``discriminators={f"{discriminator_prefix}{d}":
    PatchDiscriminator}`` for every domain d. A discriminator whose parameters are all frozen
    (``requires_grad=False``, e.g. an old kernel in stage two) is not trained: it stays a fixed critic for the
    generator's adversarial term of fakes translated into its domain. Every trainable discriminator needs its
    own optimizer (paper: Adam lr 2e-3, betas (0.5, 0.999)); one optimizer holds all trainable generator
    parameters.

    Batches are dicts with ``image_<d>`` (B, 1, H, W) in [-1, 1] for every domain d (and ``labels_<d>``
    (B, 1, H, W) integer tissue maps with ``guidance="tissue"``), e.g. from
    :class:`~ctharmonize.datasets.UnalignedMultiDomainSlices`.

    Args:
        generator: name of the multipath generator in ``generators``.
        discriminator_prefix: discriminator of domain d is ``f"{prefix}{d}"``.
        domains: domains to train (default: the generator's ``domains``).
        paths: ``[[source, target], ...]`` to train (default: every ordered pair of ``domains``); each
            iteration runs a path in both directions.
        path_sampling: ``"random"``: one path per iteration, drawn from ``Random(seed, iteration)`` so every DDP
            rank (and a resumed run) draws the same; ``"all"``: every path (unordered pairs once) per iteration.
        guidance: ``"tissue"`` (paper 000, tissue-statistic loss), ``"identity"`` (the model "without
            guidance": downsampled identity loss) or ``"none"`` (adversarial + cycle only).
        trainable_domains: stage two of the add-a-kernel scheme: only paths involving one of these domains
            are drawn (the networks must already be frozen accordingly, see :func:`prepare_new_domains`).
        identity_schedule: ``"constant"`` (weight ``loss_weights["identity"]``) or ``"reference"`` (the
            authors' per-epoch weights, :meth:`DownsampledIdentityLoss.reference_weight`).
        identity_factor, identity_mode: downsampling of the identity loss.
        tissue_min_pixels: a label counts in a sample only with more pixels than this (paper code: 5).
        tissue_loss_labels: label codes the tissue statistic uses (None: every label but 0). Use labels
            whose mean does not depend on the kernel: large soft-tissue regions. Thin structures
            (vessels, bone, small nodules) change their mean with the kernel's blur by 30-80 HU and,
            every label weighing the same, dominate the loss (the simulator's paired kernels,
            ``docs/multipath_training.md``).
        seed: seed of the path sampling.
        Other args: see :class:`~ctharmonize.engines.GANTrainer` (``loss_weights`` default
        ``{"adv": 1, "cycle": 10, "tissue": 0.01, "identity": 1}``).
    """

    DEFAULT_WEIGHTS = {"adv": 1.0, "cycle": 10.0, "tissue": 0.01, "identity": 1.0}

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Any,
        generators: Mapping[str, nn.Module],
        discriminators: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        *,
        generator: str = "G",
        discriminator_prefix: str = "D_",
        domains: Sequence[str] | None = None,
        paths: Sequence[Sequence[str]] | None = None,
        path_sampling: str = "random",
        guidance: str = "tissue",
        trainable_domains: Sequence[str] | None = None,
        identity_schedule: str = "constant",
        identity_factor: int = 2,
        identity_mode: str = "area",
        tissue_min_pixels: int = 5,
        tissue_loss_labels: Sequence[int] | None = None,
        seed: int = 0,
        loss_weights: Mapping[str, float] | None = None,
        **kwargs: Any,
    ):
        if generator not in generators:
            raise ConfigError(None, f"generator {generator!r} is not among the generators {sorted(generators)}")
        if guidance not in GUIDANCE_MODES:
            raise ConfigError(None, f"guidance must be one of {', '.join(GUIDANCE_MODES)}, got {guidance!r}")
        if path_sampling not in ("random", "all"):
            raise ConfigError(None, f"path_sampling must be 'random' or 'all', got {path_sampling!r}")
        if identity_schedule not in ("constant", "reference"):
            raise ConfigError(None, f"identity_schedule must be 'constant' or 'reference', got {identity_schedule!r}")
        net = generators[generator]
        all_domains = [str(d) for d in (domains if domains is not None else getattr(net, "domains", ()))]
        if len(all_domains) < 2:
            raise ConfigError(None, f"multipath training needs at least two domains, got {all_domains}")
        unknown = [d for d in all_domains if d not in getattr(net, "domains", all_domains)]
        if unknown:
            raise ConfigError(None, f"domains {unknown} are not in the generator's domains {list(net.domains)}")
        self.domains = all_domains
        self.generator_name = generator
        self.discriminator_prefix = discriminator_prefix
        missing = [self.discriminator_name(d) for d in all_domains if self.discriminator_name(d) not in discriminators]
        if missing:
            raise ConfigError(None, f"missing discriminators {missing} (one per domain, named {discriminator_prefix}<domain>)")

        self.trainable_domains = None if trainable_domains is None else [str(d) for d in trainable_domains]
        self.paths = self._check_paths(paths)
        self.path_sampling = path_sampling
        self.guidance = guidance
        self.identity_schedule = identity_schedule
        self.seed = int(seed)

        # frozen discriminators are fixed critics, not trained (the engine needs an optimizer per discriminator)
        trainable_d, self.fixed_critics = {}, {}
        for name, module in discriminators.items():
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                self.fixed_critics[name] = module
            else:
                trainable_d[name] = module
        if "ddp_find_unused_parameters" not in kwargs:
            # "random": one path per step uses 2 of N encoders/decoders; the last generator call of forward()
            # reaches every module used in the step, as DDP's unused-parameter search requires.
            kwargs["ddp_find_unused_parameters"] = [generator] if path_sampling == "random" else False
        weights = {**self.DEFAULT_WEIGHTS, **(loss_weights or {})}
        super().__init__(
            device, max_epochs, train_data_loader, generators, trainable_d, optimizers, loss_weights=weights, **kwargs
        )
        if self.distributed and path_sampling == "all" and not kwargs["ddp_find_unused_parameters"]:
            used = {d for p in self.paths for d in p}
            idle = [d for d in getattr(net, "domains", ()) if d not in used and any(
                p.requires_grad for p in itertools.chain(net.encoders[d].parameters(), net.decoders[d].parameters()))]
            if idle:
                raise ConfigError(None, f"path_sampling='all' under DDP needs paths using every trainable domain; "
                                        f"{idle} is never used")
        for name, module in self.fixed_critics.items():
            self.fixed_critics[name] = module.to(self.state.device)
        self.tissue_loss = TissueStatisticLoss(weight=1.0, min_pixels=tissue_min_pixels, labels=tissue_loss_labels)
        self.identity_loss = DownsampledIdentityLoss(weight=1.0, factor=identity_factor, mode=identity_mode)
        for name in trainable_d:
            self.image_pool(name)  # created now so that a resume restores them
        if identity_schedule == "reference":
            self.add_event_handler(Events.EPOCH_STARTED, self._schedule_identity)
        self._active: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ configuration helpers
    def discriminator_name(self, domain: str) -> str:
        return f"{self.discriminator_prefix}{domain}"

    def _check_paths(self, paths: Sequence[Sequence[str]] | None) -> list[tuple[str, str]]:
        if paths is None:
            pairs = [(s, t) for s in self.domains for t in self.domains if s != t]
        else:
            pairs = []
            for p in paths:
                if len(p) != 2:
                    raise ConfigError(None, f"each path must be [source, target], got {p!r}")
                s, t = str(p[0]), str(p[1])
                for d in (s, t):
                    if d not in self.domains:
                        raise ConfigError(None, f"path {s} -> {t}: unknown domain {d!r}; domains: {', '.join(self.domains)}")
                if s == t:
                    raise ConfigError(None, f"path {s} -> {t}: source and target must differ")
                pairs.append((s, t))
        if self.trainable_domains is not None:
            unknown = [d for d in self.trainable_domains if d not in self.domains]
            if unknown:
                raise ConfigError(None, f"trainable_domains {unknown} are not among the domains {self.domains}")
            pairs = [p for p in pairs if p[0] in self.trainable_domains or p[1] in self.trainable_domains]
        if not pairs:
            raise ConfigError(None, "no path to train (check paths / trainable_domains)")
        return pairs

    def _schedule_identity(self) -> None:
        self.loss_weights["identity"] = DownsampledIdentityLoss.reference_weight(self.state.epoch)

    def paths_for_iteration(self, iteration: int) -> list[tuple[str, str]]:
        """The (source, target) paths trained at ``iteration`` (1-based), identical on every rank."""
        if self.path_sampling == "all":
            seen, out = set(), []
            for s, t in self.paths:
                if frozenset((s, t)) not in seen:
                    seen.add(frozenset((s, t)))
                    out.append((s, t))
            return out
        rng = random.Random(self.seed * 1_000_003 + int(iteration))
        return [self.paths[rng.randrange(len(self.paths))]]

    # ------------------------------------------------------------------ batch access
    def _get(self, batch: Any, key: str) -> torch.Tensor:
        try:
            return batch[key]
        except (KeyError, TypeError) as err:
            have = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ConfigError(None, f"multipath batches need key {key!r} (have {have})") from err

    def real(self, batch: Any, domain: str) -> torch.Tensor:
        """Real slices of ``domain``, (B, 1, H, W) in [-1, 1]."""
        return self._get(batch, f"image_{domain}")

    # ------------------------------------------------------------------ hooks
    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """``fake_<t>_from_<s>``, ``rec_<s>_via_<t>`` (and the backward path's) for every active path."""
        for module in self.networks.values():
            module.train()  # a validation handler may have switched to eval mode
        self._active = self.paths_for_iteration(self.state.iteration)
        g = self.generators[self.generator_name]
        fakes: dict[str, torch.Tensor] = {}
        for s, t in self._active:
            x_s, x_t = self.real(batch, s), self.real(batch, t)
            fakes[f"fake_{t}_from_{s}"] = fake_t = g(x_s, s, t)
            fakes[f"rec_{s}_via_{t}"] = g(fake_t, t, s)
            fakes[f"fake_{s}_from_{t}"] = fake_s = g(x_t, t, s)
            fakes[f"rec_{t}_via_{s}"] = g(fake_s, s, t)  # last call: its graph reaches all four modules (DDP)
        return fakes

    def _adversarial(self, domain: str, fake: torch.Tensor) -> torch.Tensor:
        name = self.discriminator_name(domain)
        if name in self.fixed_critics:
            return generator_adversarial_loss(self.fixed_critics[name](fake), self.adversarial)
        return self.adversarial_loss(name, fake)

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for s, t in self._active:
            for a, b in ((s, t), (t, s)):  # forward path a -> b, then the backward path
                real = self.real(batch, a).float()
                fake = fakes[f"fake_{b}_from_{a}"]
                key = f"{a}_to_{b}"
                terms[f"adv_{key}"] = self._adversarial(b, fake)
                terms[f"cycle_{key}"] = F.l1_loss(fakes[f"rec_{a}_via_{b}"].float(), real)
                if self.guidance == "tissue":
                    labels = self._get(batch, f"labels_{a}")
                    terms[f"tissue_{key}"] = self.tissue_loss(real, fake.float(), labels)
                elif self.guidance == "identity":
                    terms[f"identity_{key}"] = self.identity_loss(real, fake.float())
        return terms

    def discriminator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        into: dict[str, list[torch.Tensor]] = {}
        for s, t in self._active:
            into.setdefault(t, []).append(fakes[f"fake_{t}_from_{s}"])
            into.setdefault(s, []).append(fakes[f"fake_{s}_from_{t}"])
        out: dict[str, dict[str, torch.Tensor]] = {}
        for domain, generated in into.items():
            name = self.discriminator_name(domain)
            if name not in self.discriminators:
                continue  # fixed critic
            pooled = self.image_pool(name).query(torch.cat(generated, 0))
            out[name] = self.discriminator_terms(name, self.real(batch, domain), pooled)
        return out


def load_generator_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a multipath checkpoint: ``model.pt`` (a generator state dict, possibly nested, see
    :func:`ctharmonize.inference.extract_generator_state`) or a training checkpoint (``network/G`` and
    ``network/D_<domain>``). Returns ``{"generator": state, "discriminators": {domain: state}}`` (discriminators
    only from training checkpoints)."""
    from ctharmonize.inference import extract_generator_state

    obj = load_weights_file(path, "pretrained checkpoint not found")
    state = extract_generator_state(obj, path)
    discs = {k[len("network/D_"):]: dict(v) for k, v in obj.items() if str(k).startswith("network/D_")}
    return {"generator": state, "discriminators": discs}


def initialize_from(generator: nn.Module, discriminators: nn.ModuleDict, path: str | os.PathLike) -> list[str]:
    """Fine-tuning: load a ``model.pt`` or training checkpoint (see :func:`load_generator_state`) into
    ``generator`` (all keys must match) and into the discriminators it holds (training checkpoints);
    the others keep their initialisation. Returns the names of the loaded discriminators."""
    states = load_generator_state(path)
    generator.load_state_dict(states["generator"])
    loaded = [d for d in states["discriminators"] if d in discriminators]
    for d in loaded:
        discriminators[d].load_state_dict(states["discriminators"][d])
    logger.info("initialised from %s (generator%s)", path, "".join(f", D_{d}" for d in loaded))
    return loaded


def prepare_new_domains(
    generator: nn.Module,
    discriminators: nn.ModuleDict,
    pretrained: str | os.PathLike,
    new_domains: Sequence[str],
) -> dict[str, Any]:
    """Stage two of the add-a-kernel scheme: load stage-one weights, add ``new_domains``, freeze the rest.

    ``generator`` (MultipathGenerator) and ``discriminators`` (MultipathDiscriminators) must be built with the
    stage-one domains. Loads ``pretrained`` (see :func:`load_generator_state`; stage-one discriminators are
    loaded too when it is a training checkpoint, else they stay untrained and a warning is logged), adds a
    fresh encoder, decoder and discriminator per new domain, freezes the shared latent and every old domain.

    Returns ``{"generator": [trainable generator parameters], "discriminators": {new domain: [parameters]},
    "domains": [all domains, old then new]}`` for the optimizers and the trainer.
    """
    from ctharmonize.networks import add_new_domain

    path = os.fspath(pretrained)
    states = load_generator_state(path)
    try:
        generator.load_state_dict(states["generator"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise WeightsError(path, f"does not match the stage-one generator (domains {list(generator.domains)}): "
                                 f"{first}") from err
    old = list(generator.domains)
    found = [d for d in old if d in states["discriminators"]]
    for d in found:
        discriminators[d].load_state_dict(states["discriminators"][d])
    if len(found) < len(old):
        logger.warning("%s holds no weights for discriminators %s; they stay untrained (frozen) critics - pass a "
                       "stage-one training checkpoint to use trained ones", path, sorted(set(old) - set(found)))
    new = [str(d) for d in new_domains]
    if not new:
        raise ConfigError(None, "new_domains is empty")
    for d in new:
        add_new_domain(generator, discriminators, d)
    gen_params = generator.freeze_except(new)
    disc_params = discriminators.freeze_except(new)
    ids = {id(p) for p in disc_params}
    return {
        "generator": gen_params,
        "discriminators": {d: [p for p in discriminators[d].parameters() if id(p) in ids] for d in new},
        "domains": list(generator.domains),
    }
