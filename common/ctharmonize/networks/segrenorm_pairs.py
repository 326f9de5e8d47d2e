"""Inference translator of the segmentation-renormalized CycleGAN (paper 004): segmenter, then generator.

Path a → b is ``G_AB(x, softmax(S_A(x)))``, b → a is ``G_BA(x, softmax(S_B(x)))``: the *source* domain's
segmenter conditions the generator on its own input, exactly as
:meth:`ctharmonize.engines.SegRenormCycleGANTrainer.translate` does in training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ctharmonize.errors import ConfigError, UnknownDomainError
from ctharmonize.networks.cyclegan_pairs import CycleGANPairs
from ctharmonize.networks.nets.domain_names import check_path_domains
from ctharmonize.networks.nets.segrenorm_generator import SegRenormGenerator
from ctharmonize.networks.nets.tissue_segmenter import CHEST_CT_TISSUE_CLASSES, TissueSegmenter
from ctharmonize.networks.translator import CycleGANPair, IdentityPath

__all__ = ["SegRenormCycleGANPairs", "SegRenormPair", "SegmentedPath"]


class SegmentedPath(nn.Module):
    """``x -> generator(x, softmax(segmenter(x)))``: a segmentation-conditioned one-way path.

    ``segmenter``: (B, 1, H, W) in [-1, 1] → class logits (B, C, H, W); ``generator``: ``(x, seg)`` → (B, 1, H, W)
    in [-1, 1], seg the softmax probabilities (float32, as the trainer's ``condition``). Shares both modules'
    weights; state dict ``segmenter.*``, ``generator.*``. ``spatial_multiple`` = lcm of the two (default 4 for a
    module without one). TorchScript-able when both modules are (:class:`TissueSegmenter`,
    :class:`SegRenormGenerator` are).
    """

    def __init__(self, segmenter: nn.Module, generator: nn.Module):
        super().__init__()
        self.segmenter = segmenter
        self.generator = generator
        self.spatial_multiple = math.lcm(int(getattr(segmenter, "spatial_multiple", 4)),
                                         int(getattr(generator, "spatial_multiple", 4)))

    def segmentation(self, x: torch.Tensor) -> torch.Tensor:
        """The condition: softmax over classes of the segmenter's logits, float32 (B, C, H, W)."""
        return torch.softmax(self.segmenter(x).float(), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x, self.segmentation(x))


class SegRenormPair(CycleGANPair):
    """:class:`CycleGANPair` whose generators are conditioned on a per-domain segmenter.

    Args:
        G_AB, G_BA: ``G(x, seg)`` generators (e.g. :class:`SegRenormGenerator`); ``G_AB``: ``domains[0]`` → ``domains[1]``.
        S_A, S_B: the segmenters of ``domains[0]`` (paper's S) and ``domains[1]`` (Q), ``S(x)`` → logits.
        domains: ``(a, b)``.
        spatial_multiple: default the lcm of the four networks' own (4 for one without).

    ``path(a, b)`` = :class:`SegmentedPath` ``(S_A, G_AB)``, ``path(b, a)`` = ``(S_B, G_BA)``; identity when
    source == target. State dict ``G_AB.*``, ``G_BA.*``, ``S_A.*``, ``S_B.*``: the trainer's network names, so a
    training checkpoint loads with ``checkpoint_networks = {n: n for n in ("G_AB", "G_BA", "S_A", "S_B")}``.
    """

    NETWORKS = ("G_AB", "G_BA", "S_A", "S_B")

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module, S_A: nn.Module, S_B: nn.Module,  # noqa: N803
                 domains: tuple[str, str] | list[str], spatial_multiple: int | None = None):
        if spatial_multiple is None:
            spatial_multiple = math.lcm(*(int(getattr(m, "spatial_multiple", 4)) for m in (G_AB, G_BA, S_A, S_B)))
        super().__init__(G_AB, G_BA, domains, spatial_multiple)
        for name, g, s in (("G_AB", G_AB, S_A), ("G_BA", G_BA, S_B)):
            gc, sc = getattr(g, "num_classes", None), getattr(s, "num_classes", None)
            if gc is not None and sc is not None and int(gc) != int(sc):
                raise ConfigError(None, f"{name} takes {gc} classes but its segmenter gives {sc}")
        self.S_A = S_A
        self.S_B = S_B

    def path(self, source: str, target: str) -> nn.Module:
        if check_path_domains(source, target, self.domains):
            return IdentityPath()
        if source == self.domains[0]:
            return SegmentedPath(self.S_A, self.G_AB)
        return SegmentedPath(self.S_B, self.G_BA)

    def segmenter(self, domain: str) -> nn.Module:
        """The segmenter of ``domain``: ``S_A`` for ``domains[0]``, ``S_B`` for ``domains[1]``; one-line
        :class:`~ctharmonize.errors.UnknownDomainError` for another domain."""
        if domain == self.domains[0]:
            return self.S_A
        if domain == self.domains[1]:
            return self.S_B
        raise UnknownDomainError(None, f"this pair has no segmenter of {domain!r} (its domains: "
                                       f"{', '.join(self.domains)})")

    def networks(self, source: str, target: str) -> dict[str, nn.Module]:
        """The trainer's networks with A = ``source``, B = ``target`` (either orientation of this pair):
        ``{"G_AB": source → target generator, "G_BA", "S_A": source's segmenter, "S_B"}``."""
        if check_path_domains(source, target, self.domains):
            raise ConfigError(None, f"a training run needs two different domains, got {source} -> {target}")
        if source == self.domains[0]:
            return {"G_AB": self.G_AB, "G_BA": self.G_BA, "S_A": self.S_A, "S_B": self.S_B}
        return {"G_AB": self.G_BA, "G_BA": self.G_AB, "S_A": self.S_B, "S_B": self.S_A}

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.path(source, target)(x)


class SegRenormCycleGANPairs(CycleGANPairs):
    """Translator over one or more segmentation-renormalized CycleGAN pairs (paper 004), each a :class:`SegRenormPair`.

    Args:
        pairs: ``[[a, b], ...]``: the domain pairs, each trained as its own run of
            :class:`~ctharmonize.engines.SegRenormCycleGANTrainer` (A = a, B = b).
        num_classes: segmentation classes (default the 7 :data:`CHEST_CT_TISSUE_CLASSES`), for the default networks.
        generator: builds one ``G(x, seg)`` generator (default ``SegRenormGenerator(num_classes=num_classes)``);
            in a bundle config ``{"_target_": "ctharmonize.networks.SegRenormGenerator", "_mode_": "callable", ...}``.
        segmenter: builds one segmenter, ``S(x)`` → logits (default ``TissueSegmenter(num_classes=num_classes)``).

    ``forward(x, source, target)`` / ``path(source, target)``: ``G(x, softmax(S_source(x)))`` through the pair
    holding both domains (identity when source == target; one-line :class:`~ctharmonize.errors.UnknownDomainError`
    for a path no pair joins); ``condition`` is ignored (the segmentation is computed inside, so the harmonizer
    needs only the image). ``spatial_multiple``: lcm of the generators' and segmenters' (16 by default). State dict
    ``pairs.<a>__<b>.{G_AB, G_BA, S_A, S_B}.*``: what the checkpoint selector writes as ``model.pt`` when
    ``network`` is this module (train.json's ``network_def``), and what ``ctharmonize merge-weights`` of several
    one-pair runs gives. Training networks: :meth:`networks`; a training checkpoint's layout:
    :meth:`checkpoint_networks`; a domain's segmenter (post-hoc Dice): :meth:`segmenter`.
    """

    def __init__(self, pairs: Sequence[Sequence[str]], num_classes: int = len(CHEST_CT_TISSUE_CLASSES),
                 generator: Callable[[], nn.Module] | None = None, segmenter: Callable[[], nn.Module] | None = None):
        if generator is None:
            def generator() -> nn.Module:
                return SegRenormGenerator(num_classes=num_classes)
        if segmenter is None:
            def segmenter() -> nn.Module:
                return TissueSegmenter(num_classes=num_classes)

        def pair(G_AB: nn.Module, G_BA: nn.Module, domains: list[str]) -> SegRenormPair:  # noqa: N803
            return SegRenormPair(G_AB, G_BA, segmenter(), segmenter(), domains)

        super().__init__(pairs, generator=generator, pair=pair)

    def _pair(self, source: str, target: str) -> tuple[str, SegRenormPair]:
        self.path(source, target)  # one-line UnknownDomainError for a path no pair joins
        for name, p in self.pairs.items():
            if {source, target} == set(p.domains):
                return name, p
        raise ConfigError(None, f"a training run needs two different domains, got {source} -> {target}")

    def segmenter(self, domain: str, other: str | None = None) -> nn.Module:
        """The segmenter of ``domain`` (``S_A`` or ``S_B`` of a pair holding it): of the pair joining ``domain``
        and ``other`` when ``other`` is given and such a pair exists, else of the first pair (in ``pairs``
        order) holding ``domain``. A domain no pair holds: one-line
        :class:`~ctharmonize.errors.UnknownDomainError` listing this model's domains.

        A domain in several pairs has one segmenter per pair (each trained in its own run), hence ``other``:
        post-hoc Dice (paper 004 Table V) takes the segmenters of the run that joined source and target."""
        holding = [p for p in self.pairs.values() if domain in p.domains]
        if not holding:
            raise UnknownDomainError(None, f"this model has no segmenter of {domain!r} (its domains: "
                                           f"{', '.join(self.domains)})")
        joined = [p for p in holding if other is not None and other in p.domains and other != domain]
        return (joined or holding)[0].segmenter(domain)

    def networks(self, source: str, target: str) -> dict[str, nn.Module]:
        """``{"G_AB", "G_BA", "S_A", "S_B"}`` of the pair joining ``source`` (A) and ``target`` (B), for the trainer
        (train.json: ``"$@network_def.networks(@source_domain, @target_domain)['G_AB']"``)."""
        return self._pair(source, target)[1].networks(source, target)

    def checkpoint_networks(self, source: str, target: str) -> dict[str, str]:
        """``{trainer network name: submodule prefix}`` of a training checkpoint of the run with A = ``source``,
        B = ``target`` (the bundle's ``checkpoint_networks``)."""
        name, p = self._pair(source, target)
        prefix = f"pairs.{name}."
        if source == p.domains[0]:
            return {n: prefix + n for n in SegRenormPair.NETWORKS}
        swap = {"G_AB": "G_BA", "G_BA": "G_AB", "S_A": "S_B", "S_B": "S_A"}
        return {n: prefix + swap[n] for n in SegRenormPair.NETWORKS}
