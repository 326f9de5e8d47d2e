"""Inference translator of the texture-aware StarGAN v2 (paper 003): one generator for every kernel domain.

Path source → target is ``clamp(G(x, s_target), -1, 1)``: the generator takes no source label, only the target's
style code ``s``. The default style is the target domain's **mean style**, the mean of ``F(z, target)`` over many
z from the (EMA) mapping network with a fixed seed, computed once (:meth:`StarGANTranslator.set_mean_styles`) and
stored in the translator's state dict, so results are deterministic. Reference-guided: the style encoder's mean
style over slices of a reference scan of the target kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ctharmonize.networks.nets.domain_names import check_domain, check_domain_names, check_path_domains
from ctharmonize.networks.translator import IdentityPath

__all__ = ["StarGANPath", "StarGANTranslator", "compute_mean_styles"]


class StarGANPath(nn.Module):
    """``x -> clamp(G(x, s), -1, 1)`` with ``s = mean_styles[index]``; x (B, 1, H, W) in [-1, 1].

    Shares G's weights and the translator's ``mean_styles`` (K, style_dim) and ``styles_ready`` buffers (the same
    tensors), so loading weights into the translator after the path was built updates the path (what
    :class:`~ctharmonize.inference.HUPath` and ``monai.bundle ckpt_export`` do). Raises when the styles are not
    set. TorchScript-able."""

    def __init__(self, generator: nn.Module, mean_styles: torch.Tensor, styles_ready: torch.Tensor, index: int):
        super().__init__()
        self.generator = generator
        self.register_buffer("mean_styles", mean_styles)
        self.register_buffer("styles_ready", styles_ready)
        self.index = int(index)
        self.spatial_multiple = int(getattr(generator, "spatial_multiple", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.styles_ready):
            raise RuntimeError("the StarGAN translator's mean styles are not set")
        s = self.mean_styles[self.index].to(x.dtype).reshape(1, -1)
        return self.generator(x, s.expand(x.shape[0], s.shape[1])).clamp(-1.0, 1.0)


@torch.no_grad()
def compute_mean_styles(mapping_network: nn.Module, num_domains: int, n: int = 10000, seed: int = 0,
                        latent_dim: int | None = None, batch: int = 1000) -> torch.Tensor:
    """(num_domains, style_dim) float32 on CPU: per domain, the mean of ``F(z, y)`` over ``n`` draws z ~ N(0, I)
    from a CPU generator seeded with ``seed`` (the same z for every domain; accumulated in float64), so the result
    depends only on F's weights, not on the batching or the device. ``latent_dim``: default the in-features of
    F's first ``nn.Linear``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    was_training = mapping_network.training
    mapping_network.eval()
    if latent_dim is None:
        latent_dim = next(m for m in mapping_network.modules() if isinstance(m, nn.Linear)).in_features
    device = next(mapping_network.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    total: torch.Tensor | None = None
    done = 0
    while done < n:
        m = min(batch, n - done)
        z = torch.randn(m, latent_dim, generator=gen).to(device)
        part = torch.stack([mapping_network(z, torch.full((m,), k, dtype=torch.long, device=device)).double().sum(0)
                            for k in range(num_domains)])
        total = part if total is None else total + part
        done += m
    mapping_network.train(was_training)
    assert total is not None
    return (total / n).float().cpu()


class StarGANTranslator(nn.Module):
    """The translator contract (docs/new_method.md) over a StarGAN v2 generator G, mapping network F and style
    encoder E.

    Args:
        domains: the kernel domains, in the order of the networks' domain heads (label k = ``domains[k]``).
        generator: ``G(x, s)``, x (B, 1, H, W) in [-1, 1], s (B, style_dim) → (B, 1, H, W) (no output activation;
            the translator clamps to [-1, 1]).
        mapping_network: ``F(z, y)`` → (B, style_dim).
        style_encoder: ``E(x, y)`` → (B, style_dim).
        style_dim: the style code's size.

    ``forward(x, source, target, condition=None)``: identity when source == target; the style is
    ``condition["style"]`` (1 or B, style_dim) when given, else the mean of ``E(r, target)`` over
    ``condition["reference"]`` (R, 1, h, w) in [-1, 1], else the stored mean style of ``target``.
    ``path(source, target)`` → :class:`StarGANPath` over the stored styles (TorchScript-able). A domain not in
    ``domains`` raises a one-line :class:`~ctharmonize.errors.UnknownDomainError`. State dict ``G.*``, ``F.*``,
    ``E.*``, ``mean_styles`` (K, style_dim) and ``styles_ready`` (bool): what the bundle's ``model.pt`` holds.
    """

    def __init__(self, domains: Sequence[str], generator: nn.Module, mapping_network: nn.Module,
                 style_encoder: nn.Module, style_dim: int = 64):
        super().__init__()
        self.domains = check_domain_names(list(domains))
        if len(self.domains) < 2:
            raise ValueError(f"a StarGAN translator needs >= 2 domains, got {list(self.domains)}")
        self.G, self.F, self.E = generator, mapping_network, style_encoder
        self.spatial_multiple = int(getattr(generator, "spatial_multiple", 1))
        self.register_buffer("mean_styles", torch.zeros(len(self.domains), int(style_dim)))
        self.register_buffer("styles_ready", torch.tensor(False))

    def domain_index(self, name: str) -> int:
        return self.domains.index(check_domain(name, self.domains))

    @torch.no_grad()
    def set_mean_styles(self, n: int = 10000, seed: int = 0) -> StarGANTranslator:
        """Compute and store every domain's mean style (:func:`compute_mean_styles`); returns ``self``."""
        styles = compute_mean_styles(self.F, len(self.domains), n=n, seed=seed)
        self.mean_styles.copy_(styles.to(self.mean_styles.device))
        self.styles_ready.fill_(True)
        return self

    def _stored_style(self, target: str) -> torch.Tensor:
        index = self.domain_index(target)
        if not bool(self.styles_ready):
            raise RuntimeError("the StarGAN translator's mean styles are not set: load a model.pt written after "
                               "set_mean_styles() or call set_mean_styles()")
        return self.mean_styles[index]

    @torch.no_grad()
    def reference_style(self, reference: torch.Tensor, target: str) -> torch.Tensor:
        """Mean of ``E(r, target)`` over reference slices (R, 1, h, w) in [-1, 1] → (style_dim,)."""
        y = torch.full((reference.shape[0],), self.domain_index(target), dtype=torch.long, device=reference.device)
        return self.E(reference, y).mean(0)

    @torch.no_grad()
    def use_reference(self, target: str, reference: torch.Tensor) -> StarGANTranslator:
        """Store the reference slices' mean style as ``target``'s style, in memory (reference-guided mode for a
        harmonizer that passes no condition); returns ``self``."""
        style = self.reference_style(reference.to(self.mean_styles.device, torch.float32), target)
        self.mean_styles[self.domain_index(target)] = style
        self.styles_ready.fill_(True)
        return self

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        if check_path_domains(source, target, self.domains):
            return x
        if condition and "style" in condition:
            s = condition["style"]
        elif condition and "reference" in condition:
            s = self.reference_style(condition["reference"], target)
        else:
            s = self._stored_style(target)
        s = s.to(x.device, x.dtype).reshape(-1, s.shape[-1]).expand(x.shape[0], s.shape[-1])
        return self.G(x, s).clamp(-1.0, 1.0)

    def path(self, source: str, target: str) -> nn.Module:
        if check_path_domains(source, target, self.domains):
            return IdentityPath()
        return StarGANPath(self.G, self.mean_styles, self.styles_ready, self.domain_index(target))
