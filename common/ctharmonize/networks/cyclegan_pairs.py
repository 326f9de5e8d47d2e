"""Several one-to-one CycleGANs as one translator: ``source → target`` runs the pair trained on those two domains."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ctharmonize.errors import UnknownDomainError
from ctharmonize.networks.nets.domain_names import check_domain_names, check_path_domains
from ctharmonize.networks.nets.resnet_generator import ResnetGenerator
from ctharmonize.networks.translator import CycleGANPair, IdentityPath

__all__ = ["CycleGANPairs", "pair_name"]


def pair_name(a: str, b: str) -> str:
    """The key of the pair ``(a, b)`` in :class:`CycleGANPairs` and in its weights file: ``"a__b"``."""
    return f"{a}__{b}"


class CycleGANPairs(nn.Module):
    """Translator over several :class:`CycleGANPair`\\ s, by default of :class:`ResnetGenerator`\\ s (Zhu et al. 2017).

    Args:
        pairs: ``[[a, b], ...]``: the domain pairs, each trained as its own CycleGAN (``G_AB``: a → b).
        ngf, n_blocks, norm: the ResNet generators' width, residual blocks (9: resnet_9blocks) and norm.
        generator: a callable that builds one generator (e.g. ``functools.partial(CVSCTGenerator, features=32)``,
            in a bundle config ``{"_target_": "ctharmonize.networks.CVSCTGenerator", "_mode_": "callable", ...}``);
            when given it replaces the ResNet generator (``ngf``, ``n_blocks``, ``norm`` are then unused). Each
            generator maps (B, 1, H, W) in [-1, 1] to the same and has an int ``spatial_multiple``.
        pair: builds one pair from ``(G_AB, G_BA, [a, b])`` (default :class:`CycleGANPair`): a translator over
            the two domains with ``domains``, ``spatial_multiple`` and ``path``, e.g. one that also owns
            per-domain segmenters (:class:`~ctharmonize.networks.SegRenormCycleGANPairs`).

    ``forward(x, source, target)``: (B, 1, H, W) in [-1, 1] → the same, through the pair holding both
    domains (identity when source == target); a source/target that no pair joins is a one-line
    :class:`UnknownDomainError`. ``domains`` is every pair's domains in order of first appearance. The
    state dict holds ``pairs.<a>__<b>.G_AB.*`` / ``.G_BA.*``: a one-pair training run's ``model.pt`` and
    the ``model.pt`` of several pairs (``ctharmonize merge-weights`` of the runs) load into the same class.
    """

    def __init__(self, pairs: Sequence[Sequence[str]], ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
                 generator: Callable[[], nn.Module] | None = None,
                 pair: Callable[[nn.Module, nn.Module, list[str]], nn.Module] = CycleGANPair):
        super().__init__()
        if generator is None:
            def generator() -> nn.Module:
                return ResnetGenerator(ngf=ngf, n_blocks=n_blocks, norm=norm)
        built: dict[str, nn.Module] = {}
        for names in pairs:
            a, b = check_domain_names(list(names)) if len(names) == 2 else (None, None)
            if a is None:
                raise UnknownDomainError(None, f"a CycleGAN pair joins two domains, got {list(names)}")
            if pair_name(a, b) in built or pair_name(b, a) in built:
                raise UnknownDomainError(None, f"the pair {a}, {b} is listed twice")
            built[pair_name(a, b)] = pair(generator(), generator(), [a, b])
        if not built:
            raise UnknownDomainError(None, "CycleGANPairs needs at least one pair")
        self.pairs = nn.ModuleDict(built)
        self._domains = tuple(dict.fromkeys(d for p in built.values() for d in p.domains))
        self.spatial_multiple = math.lcm(*(int(p.spatial_multiple) for p in built.values()))

    @property
    def domains(self) -> tuple[str, ...]:
        return self._domains

    def path(self, source: str, target: str) -> nn.Module:
        if check_path_domains(source, target, self.domains):
            return IdentityPath()
        for pair in self.pairs.values():
            if {source, target} == set(pair.domains):
                return pair.path(source, target)
        trained = ", ".join(f"{a} <-> {b}" for a, b in (p.domains for p in self.pairs.values()))
        raise UnknownDomainError(None, f"no CycleGAN pair was trained for {source} -> {target} (this model's pairs: "
                                       f"{trained})")

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.path(source, target)(x)
