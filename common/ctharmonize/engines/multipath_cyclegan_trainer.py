"""``MultipathCycleGANTrainer``: paper 000's multipath cycleGAN (shared latent, one encoder/decoder/PatchGAN per
kernel) with anatomical guidance, as a :class:`~ctharmonize.engines.GANTrainer` variant; plus the two-stage
"add a kernel" set-up (Krishnan et al. 2025).

Per iteration one path (source s, target t) is drawn (or every configured path is run):

* forward path:  ``fake_t = G(x_s, s, t)``, ``rec_s = G(fake_t, t, s)``;
* backward path: ``fake_s = G(x_t, t, s)``, ``rec_t = G(fake_s, s, t)``.

Generator terms (images in [-1, 1]; weighted through ``loss_weights`` by the prefix before ``_``):

* ``adv_<s>_to_<t>`` = LSGAN ``mean((D_t(fake_t) - 1)^2)`` (and ``adv_<t>_to_<s>``), weight ``adv`` = 1;
* ``cycle_<s>_to_<t>`` = ``mean|rec_s - x_s|`` (and ``cycle_<t>_to_<s>``), weight ``cycle`` = 10; with
  ``cycle_factor`` k > 1 both images are first averaged over k x k blocks (not in the paper: a sharp kernel's
  per-pixel noise cannot be rebuilt from a soft image, and a full-resolution L1 cycle rewards hiding it);
* ``tissue_<s>_to_<t>`` (guidance "tissue") = MSE between per-label mean intensities of x_s and fake_t over
  x_s's tissue map (``TissueStatisticLoss``), weight ``tissue`` = 0.01;
* ``identity_<s>_to_<t>`` (guidance "identity", the model "without guidance") = MSE between 2x2
  average-pooled x_s and fake_t (``DownsampledIdentityLoss``), weight ``identity`` = 1;
* ``paired_<s>_to_<t>`` (only for ``paired_paths``, not in paper 000) = ``mean|fake_t - x_t|`` against the
  pixel-aligned slice of the same scan reconstructed with the target kernel (NLST has both kernels of every
  scan; :class:`~ctharmonize.datasets.UnalignedMultiDomainSlices` ``paired_groups`` delivers them), weight
  ``paired`` = 100 (pix2pix's). A paired direction takes no guidance term: the target slice already fixes
  every tissue's intensity;
* ``chain_<a>_to_<b>`` (only for ``chain_paths`` ``[a, c, b]``, not in paper 000) = ``mean|fake_b - sg(G(x_c, c, b))|``
  where x_c is the slice of the same scan in domain c (pixel-aligned with x_a, ``paired_groups``) and sg stops
  the gradient: the unpaired path a -> b is taught to agree with the path through c (e.g. GE BONE -> B30f
  with GE STANDARD -> B30f of the same scan's STANDARD image), weight ``chain`` = 100; no guidance term.

Discriminator ``D_<d>`` (one PatchGAN per domain, decided by the TARGET domain) sees real slices of d against
every image translated into d that iteration, through its 50-image pool (LSGAN, 0.5 per term).

Initialising the networks from earlier weights (fine-tuning, stage two) is in
:mod:`ctharmonize.engines.multipath_initialization`; the optimizers come from
:func:`~ctharmonize.engines.multipath_optimizers`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from ignite.engine import Events
from torch import nn

from ctharmonize.engines.gan_trainer import GANTrainer
from ctharmonize.engines.multipath_initialization import (
    initialize_from,
    load_generator_state,
    prepare_new_domains,
)
from ctharmonize.errors import ConfigError
from ctharmonize.losses import DownsampledIdentityLoss, TissueStatisticLoss

# initialize_from, load_generator_state and prepare_new_domains live in multipath_initialization; they stay
# importable from here for configs written before they moved.
__all__ = ["GUIDANCE_MODES", "MultipathCycleGANTrainer", "initialize_from", "load_generator_state", "prepare_new_domains"]

GUIDANCE_MODES = ("tissue", "identity", "none")


class MultipathCycleGANTrainer(GANTrainer):
    """Multipath cycleGAN training (paper 000). See the module docstring for the losses.

    Networks: ``generators={generator: MultipathGenerator}``; ``discriminators``: a ``MultipathDiscriminators``
    (or any ``nn.ModuleDict`` keyed by domain), or ``{f"{discriminator_prefix}{d}": PatchDiscriminator}``, for
    every domain d; either way the trainer names them ``D_<d>``. A discriminator whose parameters are all
    frozen (``requires_grad=False``, e.g. an old kernel in stage two) is not trained: it becomes an auxiliary
    network (a fixed critic, :attr:`fixed_critics`) for the generator's adversarial term of fakes translated
    into its domain. Every trainable discriminator needs its own optimizer (paper: Adam lr 2e-3, betas
    (0.5, 0.999)); one optimizer holds all trainable generator parameters: :func:`~ctharmonize.engines.
    multipath_optimizers` builds exactly these.

    Batches are dicts with ``image_<d>`` (B, 1, H, W) in [-1, 1] for every domain d (and ``labels_<d>``
    (B, 1, H, W) integer tissue maps with ``guidance="tissue"``), e.g. from
    :class:`~ctharmonize.datasets.UnalignedMultiDomainSlices`.

    Args:
        generator: name of the multipath generator in ``generators``.
        discriminator_prefix: discriminator of domain d is ``f"{prefix}{d}"``.
        domains: domains to train (default: the generator's ``domains``).
        paths: ``[[source, target], ...]`` to train (default: every ordered pair of ``domains``); each
            iteration runs a path in both directions. With ``path_sampling="random"`` a path listed n times
            is drawn n times as often (e.g. the paired paths twice).
        path_sampling: ``"random"``: one path per iteration, drawn from ``Random(seed, iteration)`` so every DDP
            rank (and a resumed run) draws the same; ``"all"``: every path (unordered pairs once) per iteration.
        guidance: ``"tissue"`` (paper 000, tissue-statistic loss), ``"identity"`` (the model "without
            guidance": downsampled identity loss) or ``"none"`` (adversarial + cycle only).
        trainable_domains: stage two of the add-a-kernel scheme: only paths involving one of these domains
            are drawn (the networks must already be frozen accordingly, see :func:`prepare_new_domains`).
        identity_schedule: ``"constant"`` (weight ``loss_weights["identity"]``) or ``"reference"`` (the
            authors' per-epoch weights, :meth:`DownsampledIdentityLoss.reference_weight`).
        identity_factor, identity_mode: downsampling of the identity loss.
        cycle_factor: k x k block averaging of both images before the cycle L1 (1 = the paper's cycle).
        tissue_min_pixels: a label counts in a sample only with more pixels than this (paper code: 5).
        tissue_loss_labels: label codes the tissue statistic uses (None: every label but 0). Use labels
            whose mean does not depend on the kernel: large soft-tissue regions. Thin structures
            (vessels, bone, small nodules) change their mean with the kernel's blur by 30-80 HU and,
            every label weighing the same, dominate the loss (the simulator's paired kernels,
            ``docs/multipath_training.md``).
        paired_paths: ``[[source, target], ...]`` directions with a pixel-aligned target in the batch (the
            dataset's ``paired_groups``); each must be a trained path or its reverse.
        chain_paths: ``[[source, via, target], ...]``: source -> target (a trained direction) is pulled towards
            ``via -> target`` of the pixel-aligned ``via`` slice (``via`` in the source's paired group).
        seed: seed of the path sampling.
        Other args: see :class:`~ctharmonize.engines.GANTrainer` (``loss_weights`` default
        ``{"adv": 1, "cycle": 10, "tissue": 0.01, "identity": 1, "paired": 100, "chain": 100}``).
    """

    DEFAULT_WEIGHTS = {"adv": 1.0, "cycle": 10.0, "tissue": 0.01, "identity": 1.0, "paired": 100.0, "chain": 100.0}

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Any,
        generators: Mapping[str, nn.Module],
        discriminators: Mapping[str, nn.Module] | nn.ModuleDict,
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
        cycle_factor: int = 1,
        tissue_min_pixels: int = 5,
        tissue_loss_labels: Sequence[int] | None = None,
        paired_paths: Sequence[Sequence[str]] | None = None,
        chain_paths: Sequence[Sequence[str]] | None = None,
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
        if isinstance(discriminators, nn.ModuleDict) and set(all_domains) <= set(discriminators.keys()):
            discriminators = {self.discriminator_name(d): discriminators[d] for d in all_domains}  # keyed by domain
        missing = [self.discriminator_name(d) for d in all_domains if self.discriminator_name(d) not in discriminators]
        if missing:
            raise ConfigError(None, f"missing discriminators {missing} (one per domain, named {discriminator_prefix}<domain>)")

        self.trainable_domains = None if trainable_domains is None else [str(d) for d in trainable_domains]
        self.paths = self._check_paths(paths)
        self.paired_paths = self._check_paired(paired_paths)
        self.chain_paths = self._check_chains(chain_paths)
        self.path_sampling = path_sampling
        self.guidance = guidance
        self.identity_schedule = identity_schedule
        if int(cycle_factor) < 1:
            raise ConfigError(None, f"cycle_factor must be >= 1, got {cycle_factor}")
        self.cycle_factor = int(cycle_factor)
        self.seed = int(seed)

        # frozen discriminators are fixed critics: auxiliary networks, not trained
        trainable_d, fixed = {}, {}
        for name, module in discriminators.items():
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                fixed[name] = module
            else:
                trainable_d[name] = module
        self._fixed_critic_names = list(fixed)
        kwargs["auxiliary"] = {**dict(kwargs.get("auxiliary") or {}), **fixed}
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

    @property
    def fixed_critics(self) -> dict[str, nn.Module]:
        """``{D_<d>: module}`` of the frozen discriminators (auxiliary networks judging fakes, never trained)."""
        return {n: self.auxiliary[n] for n in self._fixed_critic_names}

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

    def _check_paired(self, paired: Sequence[Sequence[str]] | None) -> set[tuple[str, str]]:
        trained = {p for s, t in self.paths for p in ((s, t), (t, s))}
        out = set()
        for p in paired or ():
            pair = tuple(str(d) for d in p)
            if len(pair) != 2 or pair not in trained:
                raise ConfigError(None, f"paired_paths: {list(p)} is not a trained path (or its reverse); paths: "
                                        f"{', '.join(f'{s} -> {t}' for s, t in self.paths)}")
            out.add(pair)
        return out

    def _check_chains(self, chains: Sequence[Sequence[str]] | None) -> dict[tuple[str, str], str]:
        trained = {p for s, t in self.paths for p in ((s, t), (t, s))}
        out: dict[tuple[str, str], str] = {}
        for c in chains or ():
            chain = tuple(str(d) for d in c)
            if len(chain) != 3 or (chain[0], chain[2]) not in trained or chain[1] not in self.domains \
                    or len(set(chain)) != 3:
                raise ConfigError(None, f"chain_paths: {list(c)} must be [source, via, target] with source -> target "
                                        f"a trained direction and via another domain")
            out[(chain[0], chain[2])] = chain[1]
        return out

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

    def generator_step(self, batch: Any, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for s, t in self._active:
            for a, b in ((s, t), (t, s)):  # forward path a -> b, then the backward path
                real = self.real(batch, a).float()
                fake = fakes[f"fake_{b}_from_{a}"]
                key = f"{a}_to_{b}"
                terms[f"adv_{key}"] = self.adversarial_loss(self.discriminator_name(b), fake)  # D of the TARGET
                terms[f"cycle_{key}"] = self.cycle_term(fakes[f"rec_{a}_via_{b}"].float(), real)
                if (a, b) in self.paired_paths:
                    terms[f"paired_{key}"] = F.l1_loss(fake.float(), self.real(batch, b).float())
                elif (a, b) in self.chain_paths:
                    via = self.chain_paths[(a, b)]
                    with torch.no_grad():
                        teacher = self.generators[self.generator_name](self.real(batch, via), via, b)
                    terms[f"chain_{key}"] = F.l1_loss(fake.float(), teacher.float())
                elif self.guidance == "tissue":
                    labels = self._get(batch, f"labels_{a}")
                    terms[f"tissue_{key}"] = self.tissue_loss(real, fake.float(), labels)
                elif self.guidance == "identity":
                    terms[f"identity_{key}"] = self.identity_loss(real, fake.float())
        return terms

    def cycle_term(self, reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``mean|pool(rec) - pool(real)|`` with ``cycle_factor`` x ``cycle_factor`` average pooling; (B, 1, H, W) in [-1, 1]."""
        if self.cycle_factor > 1:
            reconstructed = F.avg_pool2d(reconstructed, self.cycle_factor)
            real = F.avg_pool2d(real, self.cycle_factor)
        return F.l1_loss(reconstructed, real)

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

