"""``MTFTranslator``: paper 001's MTF-conditioned harmonizer behind the translator contract.

The network maps a slice of ANY kernel and dose to the noise-free, blur-free ground truth, given the 2D MTF of
the slice's scanner (:class:`~ctharmonize.networks.MTFHarmonizer`). As a translator:

* ``domains``: the kernel domains it was trained on, then :data:`~ctharmonize.domains.reference.TRUTH_DOMAIN`
  (``"ground_truth"``); ``targets`` = ``("ground_truth",)``: the one domain it maps to (kernel → kernel paths are
  refused; consumers that list supported paths read ``targets``, see
  :func:`~ctharmonize.inference.harmonizer.target_domains`);
* ``forward(x, source, "ground_truth", condition)``: ``condition["mtf2d"]`` (B or 1, 1, 64, 64) is the MTF2D of
  the input (at inference measured on the whole volume by :class:`~ctharmonize.inference.MeasuredMTF`);
  ``source`` only names the input (the MTF conditions the network, not the name);
* ``path(source, "ground_truth")``: an :class:`MTFPath` with the source kernel's DESIGN MTF2D at
  ``export_spacing_mm`` baked in as a buffer (what ``ctharmonize export`` / ``network_hu`` save: a fixed-MTF
  network for that kernel at that pixel spacing; the measured-MTF path needs the volume, which an exported
  module does not see).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ctharmonize.domains.reference import TRUTH_DOMAIN
from ctharmonize.errors import ConfigError
from ctharmonize.networks.nets.domain_names import check_domain_names, check_path_domains
from ctharmonize.networks.nets.mtf_harmonizer import MTFHarmonizer
from ctharmonize.networks.translator import IdentityPath

__all__ = ["MTFPath", "MTFTranslator"]


class MTFPath(nn.Module):
    """``x -> harmonizer(x, mtf2d)`` with a fixed (1, 1, 64, 64) ``mtf2d`` buffer; (B, 1, H, W) in [-1, 1].
    TorchScript-able."""

    def __init__(self, harmonizer: MTFHarmonizer, mtf2d: torch.Tensor) -> None:
        super().__init__()
        self.harmonizer = harmonizer
        self.register_buffer("mtf2d", torch.as_tensor(mtf2d, dtype=torch.float32).reshape(1, 1, *mtf2d.shape[-2:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.harmonizer(x, self.mtf2d)


class MTFTranslator(nn.Module):
    """Translator over an :class:`MTFHarmonizer` (module docstring).

    Args:
        harmonizer: the network G_θ(I_nh, MTF2D), (B, 1, H, W) in [-1, 1].
        domains: the input kernel domains (``"ground_truth"`` is appended).
        export_spacing_mm: in-plane pixel spacing (mm) of the design MTF2D that :meth:`path` bakes in
            (default 0.9766 mm: paper 001's 500 mm FOV on 512²).
    The state dict is the harmonizer's under ``harmonizer.*``.
    """

    def __init__(self, harmonizer: MTFHarmonizer, domains: Sequence[str], export_spacing_mm: float = 500.0 / 512):
        super().__init__()
        kernels = tuple(d for d in check_domain_names(domains) if d != TRUTH_DOMAIN)
        self.harmonizer = harmonizer
        self._domains = (*kernels, TRUTH_DOMAIN)
        self.spatial_multiple = int(harmonizer.spatial_multiple)
        self.export_spacing_mm = float(export_spacing_mm)

    @property
    def domains(self) -> tuple[str, ...]:
        return self._domains

    @property
    def targets(self) -> tuple[str, ...]:
        return (TRUTH_DOMAIN,)

    def _check(self, source: str, target: str) -> bool:
        """Whether the path is the identity; a one-line error for a target other than the truth."""
        identity = check_path_domains(source, target, self.domains)
        if not identity and target != TRUTH_DOMAIN:
            raise ConfigError(None, f"the MTF-conditioned harmonizer maps every kernel to {TRUTH_DOMAIN!r}, not to "
                                    f"{target!r} (paper 001)")
        return identity

    def design_mtf2d(self, source: str) -> torch.Tensor:
        """(1, 1, 64, 64) design MTF2D of kernel ``source`` at ``export_spacing_mm``."""
        from ctharmonize.simulation.kernels import KERNELS
        from ctharmonize.simulation.mtf2d import kernel_mtf2d

        if source not in KERNELS:
            raise ConfigError(None, f"kernel {source!r} has no design MTF (known: the simulator's kernels); a "
                                    "fixed-MTF path cannot be exported for it")
        s = self.export_spacing_mm
        return torch.from_numpy(kernel_mtf2d(source, (s, s))).float()[None, None]

    def path(self, source: str, target: str) -> nn.Module:
        if self._check(source, target):
            return IdentityPath()
        return MTFPath(self.harmonizer, self.design_mtf2d(source))

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        if self._check(source, target):
            return x
        if condition is None or "mtf2d" not in condition:
            raise ConfigError(None, "the MTF-conditioned harmonizer needs condition['mtf2d'], the input's 2D MTF "
                                    "(SliceHarmonizer(condition=MeasuredMTF()) measures it per volume)")
        return self.harmonizer(x, condition["mtf2d"])
