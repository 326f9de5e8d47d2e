"""Frequency-band energy normalization (after Gallardo-Estrella et al., Eur Radiol 2016;26:478-486).

A classical, non-learned translator. Each axial slice x ((B, 1, H, W) in **[-1, 1]**, the HU window
scaled) is split by a difference-of-Gaussians pyramid (hierarchical unsharp masking) into bands

    L_0 = x,  L_k = G_{s_k} * x  (k = 1..K),  band_k = L_{k-1} - L_k  (k = 1..K),  residual = L_K,

so that ``band_1 + ... + band_K + residual == x``. ``G_s`` is a sampled, normalised Gaussian of
standard deviation ``s`` **pixels** (radius ``ceil(truncate * s)``), applied as two 1-D convolutions
with reflect padding. A source → target path scales each band by the ratio of the two domains'
fitted band energies and keeps the low-pass residual (gain 1, so the mean HU of any region larger
than the coarsest scale is kept):

    y = x + sum_k (g_k - 1) * band_k,   g_k = E[target, k] / E[source, k].

The band energies ``E`` (buffer ``band_energy``, shape (n_domains, K + 1), the last column the
residual's) are root-mean-square band values over a reference region of a domain's training slices,
in [-1, 1] units (multiply by (hu_max - hu_min) / 2 = 2048 for HU with the default window); their
ratios do not depend on the window. They are fitted by
:func:`ctharmonize.engines.fit_band_energies` and saved as the module's ``state_dict()``.

Sigmas are in pixels of the grid the energies were fitted on: a band's energy is a per-voxel
statistic and depends on the pixel size, so a fit is valid only at its own pixel spacing whatever
unit the sigmas are given in. The mean fitted spacing of each domain is stored (buffer
``pixel_spacing``, mm) and :meth:`BandEnergyNormalizer.check_spacing` refuses volumes of another one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.networks.nets.domain_names import check_domain, check_domain_names

__all__ = ["DEFAULT_SIGMAS", "BandEnergyNormalizer", "BandGainPath", "GaussianBlur2d", "gaussian_taps"]

#: octave-spaced scales (pixels); the bands peak at 0.5 (the finest is a high-pass), 0.31, 0.15, 0.077 and
#: 0.038 cycles/pixel
DEFAULT_SIGMAS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
_NAME_BYTES = 32  # a domain name is stored as this many bytes in the state dict (checked on load)


def gaussian_taps(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Sampled 1-D Gaussian of standard deviation ``sigma`` pixels, radius ``ceil(truncate * sigma)``,
    normalised to sum 1 (float64, length 2 * radius + 1): the taps ``scipy.ndimage.gaussian_filter`` uses."""
    radius = max(1, int(math.ceil(float(truncate) * float(sigma))))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return taps / taps.sum()


class GaussianBlur2d(nn.Module):
    """Separable Gaussian blur of (B, 1, H, W) images, reflect padding (replicate where an image side is
    not longer than the radius). TorchScript-able."""

    def __init__(self, sigma: float, truncate: float = 4.0) -> None:
        super().__init__()
        taps = gaussian_taps(sigma, truncate).float()
        self.radius = (taps.numel() - 1) // 2
        self.register_buffer("taps_w", taps.view(1, 1, 1, -1), persistent=False)
        self.register_buffer("taps_h", taps.view(1, 1, -1, 1), persistent=False)

    def _pad(self, x: torch.Tensor, pad: list[int], side: int) -> torch.Tensor:
        if self.radius < side:
            return F.pad(x, pad, mode="reflect")
        return F.pad(x, pad, mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # slices as the channels of one image, convolved depthwise (groups): on CPU several times faster than
        # a batch of one-channel images, which PyTorch convolves slice by slice
        b, c, h, w = x.shape
        n = b * c
        r = self.radius
        y = x.reshape(1, n, h, w)
        y = F.conv2d(self._pad(y, [r, r, 0, 0], w), self.taps_w.to(x.dtype).expand(n, 1, 1, 2 * r + 1), groups=n)
        y = F.conv2d(self._pad(y, [0, 0, r, r], h), self.taps_h.to(x.dtype).expand(n, 1, 2 * r + 1, 1), groups=n)
        return y.reshape(b, c, h, w)


class BandGainPath(nn.Module):
    """One source → target path: ``y = x + sum_k (gain_k - 1) * band_k`` on (B, 1, H, W) in [-1, 1], with
    ``gain_k = band_energy[target, k] / band_energy[source, k]``.

    Args:
        blurs: the pyramid's Gaussian blurs, finest first (shared with the translator).
        band_energy: the translator's (n_domains, K + 1) energy buffer, shared (not copied): loading
            weights into the translator updates the path, as ``ckpt_export`` needs.
        source_index, target_index: rows of ``band_energy``.

    ``source_index == target_index`` returns ``x`` itself. TorchScript-able; computes in float32.
    """

    def __init__(self, blurs: nn.ModuleList, band_energy: torch.Tensor, source_index: int,
                 target_index: int) -> None:
        super().__init__()
        if band_energy.shape[-1] != len(blurs) + 1:
            raise ValueError(f"band_energy has {band_energy.shape[-1]} columns for {len(blurs)} bands + residual")
        self.blurs = blurs
        self.register_buffer("band_energy", band_energy)
        self.source_index = int(source_index)
        self.target_index = int(target_index)

    def gains(self) -> torch.Tensor:
        """(K,) float32 band gains of this path."""
        k = self.band_energy.shape[1] - 1
        if self.source_index == self.target_index:
            return torch.ones(k, dtype=torch.float32, device=self.band_energy.device)
        e_s = self.band_energy[self.source_index, :k]
        e_t = self.band_energy[self.target_index, :k]
        if not bool((e_s > 0).all()) or not bool((e_t > 0).all()) or not bool(torch.isfinite(e_t / e_s).all()):
            raise RuntimeError("BandGainPath: band energies not fitted (load the bundle's model.pt)")
        return (e_t / e_s).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.source_index == self.target_index:
            return x
        x = x.float()
        gains = self.gains().to(x.device)
        y = x
        previous = x
        k = 0
        for blur in self.blurs:
            low = blur(x)
            y = y + (gains[k] - 1.0) * (previous - low)
            previous = low
            k += 1
        return y


def _encode_names(names: Sequence[str]) -> torch.Tensor:
    codes = torch.zeros(len(names), _NAME_BYTES, dtype=torch.uint8)
    for i, name in enumerate(names):
        raw = name.encode("ascii")
        if len(raw) > _NAME_BYTES:
            raise ConfigError(None, f"domain name {name!r} is longer than {_NAME_BYTES} characters")
        codes[i, : len(raw)] = torch.tensor(list(raw), dtype=torch.uint8)
    return codes


def _decode_names(codes: torch.Tensor) -> list[str]:
    return [bytes(int(b) for b in row if int(b)).decode("ascii", "replace") for row in codes]


class BandEnergyNormalizer(nn.Module):
    """Translator (contract of :mod:`ctharmonize.networks.translator`) by band-energy normalization.

    Args:
        domains: kernel-domain names (``ctharmonize domains``), in the order of the ``band_energy`` rows.
        sigmas: Gaussian scales in pixels (strictly increasing, > 0): K bands + the low-pass residual.
        truncate: Gaussian radius in sigmas (4, as scipy).

    Buffers (the state dict; ``models/model.pt``):
        ``band_energy`` (n_domains, K + 1) float64: RMS of each band (and of the residual) over the
        reference region of the domain's training slices, [-1, 1] units; 0 = not fitted.
        ``pixel_spacing`` (n_domains, 2) float64: mean in-plane spacing (sx, sy) of those scans, mm.
        ``voxel_count`` (n_domains,) float64: reference-region voxels the energies average over.
        ``sigmas`` (K,) and ``domain_names`` (n_domains, 32) uint8: the band design and domain order the
        energies belong to; loading a state fitted for another design or domain order is refused.

    ``forward(x, source, target, condition=None)``: (B, 1, H, W) in [-1, 1] → same; ``condition`` unused;
    computed in float32 (autocast off: bf16 would cost ~8 HU of precision). ``spatial_multiple`` is 1.
    """

    spatial_multiple: int = 1

    def __init__(self, domains: Sequence[str], sigmas: Sequence[float] = DEFAULT_SIGMAS,
                 truncate: float = 4.0) -> None:
        super().__init__()
        self._domains = check_domain_names(domains)
        sig = [float(s) for s in sigmas]
        if not sig or any(not math.isfinite(s) or s <= 0 for s in sig) or any(b <= a for a, b in zip(sig, sig[1:], strict=False)):
            raise ConfigError(None, f"sigmas must be positive and strictly increasing (pixels), got {list(sigmas)}")
        if not float(truncate) > 0:
            raise ConfigError(None, f"truncate must be > 0, got {truncate}")
        self.truncate = float(truncate)
        n = len(self._domains)
        self.register_buffer("band_energy", torch.zeros(n, len(sig) + 1, dtype=torch.float64))
        self.register_buffer("pixel_spacing", torch.zeros(n, 2, dtype=torch.float64))
        self.register_buffer("voxel_count", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("sigmas", torch.tensor(sig, dtype=torch.float64))
        self.register_buffer("domain_names", _encode_names(self._domains))
        self.pyramid = nn.ModuleList([GaussianBlur2d(s, self.truncate) for s in sig])  # taps not in the state

    @property
    def domains(self) -> tuple[str, ...]:
        return self._domains

    @property
    def n_bands(self) -> int:
        """K band-pass bands (the low-pass residual not counted)."""
        return int(self.sigmas.numel())

    def extra_repr(self) -> str:
        return f"domains={list(self._domains)}, sigmas={self.sigmas.tolist()} px"

    def _load_from_state_dict(self, state_dict: Mapping, prefix: str, *args, **kwargs) -> None:
        names = state_dict.get(prefix + "domain_names")
        if isinstance(names, torch.Tensor) and tuple(names.shape) == tuple(self.domain_names.shape) \
                and not torch.equal(names.to(self.domain_names), self.domain_names):
            raise WeightsError(None, f"band energies fitted for domains {_decode_names(names)}, but the network "
                                     f"is configured for {list(self._domains)} (same names in the same order)")
        sigmas = state_dict.get(prefix + "sigmas")
        if isinstance(sigmas, torch.Tensor) and sigmas.shape == self.sigmas.shape \
                and not torch.allclose(sigmas.double(), self.sigmas, rtol=1e-9, atol=0.0):
            raise WeightsError(None, f"band energies fitted with sigmas {sigmas.tolist()} px, but the network is "
                                     f"configured with {self.sigmas.tolist()} px")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- decomposition -------------------------------------------------------------------------------

    def decompose(self, x: torch.Tensor) -> torch.Tensor:
        """Bands of ``x`` (B, 1, H, W) in [-1, 1]: (B, K + 1, H, W), band 1 … band K, then the low-pass
        residual; they sum to ``x`` (to float rounding)."""
        x = x.float()
        out, previous = [], x
        for blur in self.pyramid:
            low = blur(x)
            out.append(previous - low)
            previous = low
        out.append(previous)
        return torch.cat(out, dim=1)

    # -- paths ---------------------------------------------------------------------------------------

    def _index(self, domain: str, role: str) -> int:
        return self._domains.index(check_domain(domain, self._domains, role))

    def _check_fitted(self, domain: str, role: str) -> None:
        row = self.band_energy[self._index(domain, role)]
        if not bool(torch.isfinite(row).all()) or not bool((row[:-1] > 0).all()):
            raise ConfigError(None, f"no fitted band energies for {role} {domain!r} (load the bundle's model.pt, "
                                    "or fit them with the bundle's train.json)")

    def gains(self, source: str, target: str) -> torch.Tensor:
        """(K,) float64 band gains ``E[target, k] / E[source, k]`` (all 1 when source == target)."""
        s, t = self._index(source, "source domain"), self._index(target, "target domain")
        if s == t:
            return torch.ones(self.n_bands, dtype=torch.float64)
        self._check_fitted(source, "source domain")
        self._check_fitted(target, "target domain")
        return (self.band_energy[t, :-1] / self.band_energy[s, :-1]).cpu()

    def path(self, source: str, target: str) -> BandGainPath:
        """The ``source`` → ``target`` mapping as a TorchScript-able module on (B, 1, H, W) in [-1, 1]. It
        shares this module's blurs and ``band_energy`` buffer (so it may be made before the weights are
        loaded, as ``network_hu`` is for ``ckpt_export``); running it unfitted raises."""
        return BandGainPath(self.pyramid, self.band_energy, self._index(source, "source domain"),
                            self._index(target, "target domain"))

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Normalize (B, 1, H, W) in [-1, 1] from ``source`` to ``target``; float32, same shape."""
        if source != target:
            self._check_fitted(source, "source domain")
            self._check_fitted(target, "target domain")
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.path(source, target)(x.float())

    # -- fitted-state helpers ------------------------------------------------------------------------

    def fitted_spacing(self, domain: str) -> tuple[float, float] | None:
        """The mean in-plane spacing (sx, sy) mm of ``domain``'s fitted scans, or None if not recorded."""
        row = self.pixel_spacing[self._domains.index(check_domain(domain, self._domains))]
        return None if not bool((row > 0).all()) else (float(row[0]), float(row[1]))

    def check_spacing(self, spacing: Sequence[float], source: str, tolerance: float | None = 0.1,
                      where: object = None) -> None:
        """Refuse (one-line :class:`ConfigError` naming ``where``) a volume whose in-plane spacing
        (``spacing[:2]``, mm) differs from ``source``'s fitted spacing by more than ``tolerance``
        (relative). ``tolerance`` None skips the check; an unrecorded fitted spacing passes."""
        fitted = self.fitted_spacing(source)
        if tolerance is None or fitted is None:
            return
        for got, want in zip((float(spacing[0]), float(spacing[1])), fitted, strict=True):
            if abs(got - want) > float(tolerance) * want:
                raise ConfigError(where, f"in-plane spacing {float(spacing[0]):.3g} x {float(spacing[1]):.3g} mm, but "
                                         f"the {source} band energies were fitted at {fitted[0]:.3g} x {fitted[1]:.3g} "
                                         f"mm (tolerance {100 * float(tolerance):g} %): the band statistics are "
                                         "per-pixel; resample the volume or fit at its spacing")
