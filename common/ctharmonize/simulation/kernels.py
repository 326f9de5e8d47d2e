"""Reconstruction kernels defined by their target MTF.

A kernel is a :class:`KernelSpec`: a parametric modulation transfer function

    MTF(f) = exp(-ln2 * (f / f50) ** power) * (1 + boost * b(f)),   b(f) = (f/fb)^2 exp(1 - (f/fb)^2)

with ``f`` in line pairs per cm (lp/cm). ``boost`` > 0 gives the mid-frequency enhancement
(MTF > 1 around ``boost_freq``) and edge overshoot of sharp GE kernels. The reconstruction
filter is ramp x MTF (see :mod:`ctharmonize.simulation.reconstruction`). Adding a kernel =
adding one entry to :data:`KERNELS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KernelSpec", "KERNELS", "mtf50_of"]


def mtf50_of(freqs: np.ndarray, mtf: np.ndarray) -> float:
    """First frequency where a sampled MTF falls to 0.5 (linear interpolation); NaN if never."""
    freqs = np.asarray(freqs, float)
    mtf = np.asarray(mtf, float)
    below = np.nonzero(mtf < 0.5)[0]
    below = below[below > 0]
    if below.size == 0:
        return float("nan")
    i = below[0]
    f0, f1, m0, m1 = freqs[i - 1], freqs[i], mtf[i - 1], mtf[i]
    return float(f0 + (m0 - 0.5) * (f1 - f0) / (m0 - m1))


@dataclass(frozen=True)
class KernelSpec:
    """One reconstruction kernel (= one kernel domain).

    Attributes:
        name: canonical domain name, e.g. ``"siemens_b30f"``.
        vendor: vendor key in :data:`~ctharmonize.simulation.vendors.VENDORS`.
        dicom_name: ConvolutionKernel (0018,1210) value, e.g. ``"B30f"``.
        sharpness: ``"soft"`` or ``"sharp"``.
        f50: frequency (lp/cm) where the un-boosted MTF is 0.5.
        power: roll-off exponent (2 = Gaussian).
        boost: mid-frequency boost amplitude (0 = none).
        boost_freq: frequency (lp/cm) of the boost peak.
    """

    name: str
    vendor: str
    dicom_name: str
    sharpness: str
    f50: float
    power: float = 2.0
    boost: float = 0.0
    boost_freq: float = 3.0

    def mtf(self, f_lp_cm: np.ndarray | float) -> np.ndarray:
        """Target MTF at frequencies in lp/cm (unitless, 1 at f = 0)."""
        f = np.abs(np.asarray(f_lp_cm, dtype=float))
        base = np.exp(-np.log(2.0) * (f / self.f50) ** self.power)
        r2 = (f / self.boost_freq) ** 2
        return base * (1.0 + self.boost * r2 * np.exp(1.0 - r2))

    @property
    def design_mtf50(self) -> float:
        """MTF50 (lp/cm) of the design curve (where the boosted MTF crosses 0.5)."""
        f = np.linspace(0.0, 30.0, 30001)
        return mtf50_of(f, self.mtf(f))


_KERNEL_LIST = [
    KernelSpec("siemens_b30f", "siemens", "B30f", "soft", f50=3.4, power=2.0),
    KernelSpec("siemens_b50f", "siemens", "B50f", "sharp", f50=5.8, power=2.6),
    KernelSpec("siemens_b70f", "siemens", "B70f", "sharp", f50=8.0, power=2.6, boost=0.15, boost_freq=4.5),
    KernelSpec("ge_standard", "ge", "STANDARD", "soft", f50=3.5, power=2.0, boost=0.05, boost_freq=2.0),
    KernelSpec("ge_bone", "ge", "BONE", "sharp", f50=6.7, power=2.5, boost=0.3, boost_freq=3.0),
    KernelSpec("ge_lung", "ge", "LUNG", "sharp", f50=6.0, power=2.4, boost=0.2, boost_freq=3.0),
]

# Siemens SOMATOM Force-like family of paper 001 (its virtual imaging trial; the family, its groups,
# iterative strengths, doses and FOV are in :mod:`ctharmonize.simulation.force_family`). Neither the
# paper nor the spec gives MTF values, so the design MTF50 follows the Siemens naming rule that the
# number grows with sharpness: linear in the kernel number n between this module's own anchors
# B30f (3.4 lp/cm) and B70f (~8.0 lp/cm), MTF50(n) = 3.4 + 0.115 (n - 30) lp/cm (B50f 5.8 fits it).
# Shape as the existing Siemens kernels: Gaussian roll-off (power 2) for the smooth group, a steeper
# roll-off (2.3 medium, 2.6 sharp), and the B70f-like mid-frequency boost (edge overshoot) on Br69f
# only (f50 = 7.66 so that the boosted curve crosses 0.5 at the rule's value, 7.89). The Qr
# kernels (NAEOTOM Alpha photon-counting names, spec §4) are emulated by the same rule: only their MTF
# is modelled. Nominal design values, not measurements of a Force or an Alpha.
_FORCE_LIST = [
    KernelSpec("siemens_br32f", "siemens", "Br32f", "soft", f50=3.63, power=2.0),
    KernelSpec("siemens_br40f", "siemens", "Br40f", "soft", f50=4.55, power=2.0),
    KernelSpec("siemens_br49f", "siemens", "Br49f", "sharp", f50=5.59, power=2.3),
    KernelSpec("siemens_br59f", "siemens", "Br59f", "sharp", f50=6.74, power=2.6),
    KernelSpec("siemens_br62f", "siemens", "Br62f", "sharp", f50=7.08, power=2.6),
    KernelSpec("siemens_br64f", "siemens", "Br64f", "sharp", f50=7.31, power=2.6),
    KernelSpec("siemens_br69f", "siemens", "Br69f", "sharp", f50=7.66, power=2.6, boost=0.15, boost_freq=4.5),
    KernelSpec("siemens_qr32f", "siemens", "Qr32f", "soft", f50=3.63, power=2.0),
    KernelSpec("siemens_qr49f", "siemens", "Qr49f", "sharp", f50=5.59, power=2.3),
    KernelSpec("siemens_qr59f", "siemens", "Qr59f", "sharp", f50=6.74, power=2.6),
    KernelSpec("siemens_qr61f", "siemens", "Qr61f", "sharp", f50=6.97, power=2.6),
]
_KERNEL_LIST += _FORCE_LIST

#: canonical domain name -> kernel
KERNELS: dict[str, KernelSpec] = {k.name: k for k in _KERNEL_LIST}
