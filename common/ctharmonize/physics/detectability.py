"""Detectability index d′ of a model observer from a measured MTF and NPS (paper 001 §5.3, Eq. 9).

Frequencies f are radial, in cycles/mm inside the integrals (lp/cm = 10 × cycles/mm at the interface),
and the integrals run over the square ``|u|, |v| <= Nyquist`` of the image grid (Riemann sum on
``grid`` × ``grid`` points). Terms:

* task W(f) = C · πr² · 2 J₁(2πrf) / (2πrf): the Fourier transform of a disk of diameter 2r
  (default 4 mm, paper 001's mean LUNA nodule) and contrast C (default 100 HU), in HU·mm²;
* eye filter E(ρ) = ρ^n · exp(−c ρ²), normalised to a peak of 1, with ρ the angular frequency in cycles
  per degree at viewing distance D and display magnification M: ρ = f · D · π/180 / M; n = 1.3 and the
  peak at 4 cycles/degree (c = n / (2 · 4²)), D = 500 mm, M = 1 (spec papers_001_002 §5.3; the
  human contrast sensitivity peak, e.g. ICRU Report 54);
* internal noise N_i = α · D² with α = 10⁻⁸ (paper 001), taken in HU²·mm²: ≈ 0.0025 HU²·mm² at
  D = 500 mm, far below a CT NPS (≥ 1 HU²·mm²) except where E or the NPS vanish; a regulariser.

Observers (both reported):

* ``npwe`` (default), the non-prewhitening observer with an eye filter and internal noise (ICRU 54,
  AAPM TG-233)::

      d′² = [∫∫ W² MTF² E² du dv]² / ∫∫ W² MTF² E² (E² NPS + N_i) du dv

* ``pwei``, paper 001's Eq. 9 as reconstructed in the spec, integrated as d′² (the paper writes d′)::

      d′² = ∫∫ W² MTF² E² / (E² NPS + N_i) du dv

  For a linear FBP image NPS ∝ |f|·MTF², so this prewhitening form hardly depends on the kernel;
  the NPWE form does (a smoother kernel gives a higher d′ at equal dose), hence the default.

Scaling: without internal noise both give d′ ∝ 1 / √(NPS scale) (NPS / 4 → d′ × 2) and d′ ∝ C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.special import j1

from ctharmonize.errors import ConfigError
from ctharmonize.physics.edge_mtf import EdgeMTF
from ctharmonize.physics.nps import NoisePower

__all__ = ["OBSERVERS", "Detectability", "ObserverModel", "detectability", "disk_task", "dprime", "eye_filter",
           "nps_function"]

OBSERVERS = ("npwe", "pwei")


@dataclass(frozen=True)
class ObserverModel:
    """Task and observer constants (see the module docstring); lengths in mm, contrast in HU."""

    diameter_mm: float = 4.0
    contrast_hu: float = 100.0
    viewing_distance_mm: float = 500.0
    magnification: float = 1.0
    eye_exponent: float = 1.3
    eye_peak_cycles_per_degree: float = 4.0
    alpha: float = 1e-8
    eye: bool = True

    @property
    def internal_noise(self) -> float:
        """N_i = α · D² (HU²·mm²)."""
        return float(self.alpha) * float(self.viewing_distance_mm) ** 2


def disk_task(f_cyc_mm: np.ndarray, diameter_mm: float = 4.0, contrast_hu: float = 100.0) -> np.ndarray:
    """W(f) (HU·mm²) of a disk of ``diameter_mm`` and ``contrast_hu`` at radial frequencies in cycles/mm."""
    r = 0.5 * float(diameter_mm)
    x = 2.0 * np.pi * r * np.abs(np.asarray(f_cyc_mm, dtype=float))
    safe = np.where(x > 1e-12, x, 1.0)
    airy = np.where(x > 1e-12, 2.0 * j1(safe) / safe, 1.0)
    return float(contrast_hu) * np.pi * r * r * airy


def eye_filter(f_cyc_mm: np.ndarray, model: ObserverModel = ObserverModel()) -> np.ndarray:
    """E(f) (unitless, peak 1) at radial frequencies in cycles/mm on the display (module docstring)."""
    if not model.eye:
        return np.ones(np.shape(f_cyc_mm))
    rho = np.abs(np.asarray(f_cyc_mm, dtype=float)) * model.viewing_distance_mm * np.pi / 180.0 / model.magnification
    n, peak = float(model.eye_exponent), float(model.eye_peak_cycles_per_degree)
    c = n / (2.0 * peak**2)
    return (rho / peak) ** n * np.exp(-c * (rho**2 - peak**2))


def dprime(
    mtf: Callable[[np.ndarray], np.ndarray],
    nps: Callable[[np.ndarray, np.ndarray], np.ndarray],
    nyquist_lp_cm: float | tuple[float, float],
    model: ObserverModel = ObserverModel(),
    observer: str = "npwe",
    task: Callable[[np.ndarray], np.ndarray] | None = None,
    grid: int = 256,
) -> float:
    """d′ of ``observer`` for MTF(f) and NPS(u, v) given as functions of frequencies in lp/cm.

    Args:
        mtf: radial frequency (lp/cm) -> MTF (unitless).
        nps: (u, v) frequencies (lp/cm, u along columns) -> NPS (HU²·mm²).
        nyquist_lp_cm: the integration square's half side (lp/cm), one value or (v, u).
        model: task and observer constants.
        observer: ``"npwe"`` or ``"pwei"`` (module docstring).
        task: radial frequency (lp/cm) -> W (HU·mm²); default the disk of ``model``.
        grid: points per axis of the Riemann sum.
    """
    if observer not in OBSERVERS:
        raise ConfigError(None, f"unknown observer {observer!r}; known: {', '.join(OBSERVERS)}")
    nv, nu = (nyquist_lp_cm, nyquist_lp_cm) if np.isscalar(nyquist_lp_cm) else nyquist_lp_cm  # type: ignore[misc]
    u = (np.arange(grid) - grid // 2) * (2.0 * float(nu) / grid)
    v = (np.arange(grid) - grid // 2) * (2.0 * float(nv) / grid)
    uu, vv = np.meshgrid(u, v)
    f = np.hypot(uu, vv)
    da = (u[1] - u[0]) * (v[1] - v[0]) / 100.0  # (cycles/mm)²
    w = task(f) if task is not None else disk_task(f / 10.0, model.diameter_mm, model.contrast_hu)
    m = np.asarray(mtf(f), dtype=float)
    e = eye_filter(f / 10.0, model)
    n = np.clip(np.asarray(nps(uu, vv), dtype=float), 0.0, None)
    ni = model.internal_noise
    signal = w**2 * m**2 * e**2
    if observer == "npwe":
        num = float(signal.sum() * da) ** 2
        den = float((signal * (e**2 * n + ni)).sum() * da)
        d2 = num / den if den > 0 else float("inf")
    else:
        noise = e**2 * n + ni
        d2 = float(np.where(noise > 0, signal / np.where(noise > 0, noise, 1.0), 0.0).sum() * da)
    return float(np.sqrt(d2))


def nps_function(result: NoisePower) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The measured 2-D NPS as a function of (u, v) in lp/cm: bilinear, periodic at ±Nyquist, 0 outside."""
    nps, fy, fx = result.nps, result.fy, result.fx
    # even sizes: the +Nyquist row/column is the −Nyquist one (periodic spectrum)
    pad = (int(fy.size % 2 == 0), int(fx.size % 2 == 0))
    nps = np.pad(nps, ((0, pad[0]), (0, pad[1])), mode="wrap")
    fy = np.append(fy, -fy[0]) if pad[0] else fy
    fx = np.append(fx, -fx[0]) if pad[1] else fx
    interp = RegularGridInterpolator((fy, fx), nps, bounds_error=False, fill_value=0.0)

    def nps_uv(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        pts = np.stack([np.asarray(v, float), np.asarray(u, float)], axis=-1)
        return interp(pts)

    return nps_uv


@dataclass
class Detectability:
    """d′ of both observers, the task/observer constants and the MTF/NPS surrogates they came from."""

    dprime_npwe: float
    dprime_pwei: float
    model: ObserverModel
    mtf50_lp_cm: float
    noise_sd_hu: float

    def summary(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"dprime_npwe": self.dprime_npwe, "dprime_pwei": self.dprime_pwei,
                "internal_noise_hu2_mm2": self.model.internal_noise, "model": asdict(self.model),
                "mtf50_lp_cm": self.mtf50_lp_cm, "noise_sd_hu": self.noise_sd_hu}


def detectability(edge: EdgeMTF, noise: NoisePower, model: ObserverModel = ObserverModel(),
                  grid: int = 256) -> Detectability:
    """d′ (both observers) of the task of ``model`` from a measured MTF and NPS of the same image."""
    nyq = (10.0 / (2.0 * noise.pixel_spacing[0]), 10.0 / (2.0 * noise.pixel_spacing[1]))
    fn = nps_function(noise)
    values = {o: dprime(edge.mtf_at, fn, nyq, model, o, grid=grid) for o in OBSERVERS}
    return Detectability(values["npwe"], values["pwei"], model, edge.mtf50, noise.noise_sd)
