"""Self-adversarial sensitivity of a harmonizer (paper 004 §III-F, Eqs. 6-7, Fig. 9; spec 004.5.3).

Zero-mean Gaussian noise of SD σ, in the **[-1, 1] units of the harmonizer's network window**, is added to
an input and the perturbed input is harmonized. A method that hides information in low-amplitude signal
(a steganographic CycleGAN, Chu et al. 2017) reacts strongly to such noise. Per σ and slice:

* ``mode="output"`` (default; issue 16): ``MSE(H(x + ε), H(x))`` and ``SSIM(H(x + ε), H(x))``: the output on
  the noisy input against the output on the clean input, ``H`` the ``source → target`` path;
* ``mode="cycle"`` (the paper's form): noise on the intermediate translation, ``MSE(F(G(x) + ε), x)`` and
  ``SSIM(F(G(x) + ε), x)``, ``G`` the ``source → target`` and ``F`` the ``target → source`` path.

Units and conversions. The harmonizer contract is HU in and out, so σ becomes
``σ_HU = σ (hu_max − hu_min) / 2`` (the project window [-1024, 3072] HU: σ = 0.05 → 102.4 HU, σ = 0.5 →
1024 HU); ``hu_min``/``hu_max`` are the harmonizer's (``SliceHarmonizer`` exposes them), else the ``window``
argument. The harmonizer clips its input to its window, so noise pushing a voxel past the window (air at
-1024 HU, the window edge) is clipped as the network would see it. Images are compared in [-1, 1]
(``hu_to_unit`` of the same window, clipped): MSE in [-1, 1]² units, SSIM from
``skimage.metrics.structural_similarity`` per 2-D slice, ``data_range=2``, the default 7-pixel window.

Noise. One standard-normal field ``z`` per slice stack, ``numpy.random.default_rng([seed, stack index])``,
scaled to ``ε = σ_HU z`` for every σ and reused for every method (common random numbers: methods see
identical perturbations, and an identity harmonizer's MSE is exactly ``σ² mean(z²)``, clipping aside). The
σ = 0 row is a second clean run (MSE 0 and SSIM 1 for a deterministic harmonizer in output mode; the cycle
reconstruction error in cycle mode).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from ctharmonize.errors import ConfigError
from ctharmonize.inference.harmonizer import Harmonizer, call_harmonizer
from ctharmonize.inference.spacing_policy import harmonize_at_trained_spacing
from ctharmonize.transforms.scale_hu import hu_to_unit

__all__ = ["DEFAULT_SIGMAS", "MODES", "SSIM_DATA_RANGE", "SensitivityCurve", "SliceStack", "harmonizer_window",
           "noise_field", "sensitivity_curve", "sigma_to_hu"]

#: σ in [-1, 1] units: 0, 0.05, ..., 0.5 (paper 004 Fig. 9a: linearly from 0 to 0.5)
DEFAULT_SIGMAS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(11))
MODES = ("output", "cycle")
#: SSIM on [-1, 1] images (spec 004.7 #12)
SSIM_DATA_RANGE = 2.0


@dataclass(frozen=True)
class SliceStack:
    """Slices (N, Y, X) float32 HU of one volume, harmonized together as one (N, Y, X) volume; ``spacing``
    (sx, sy, ...) mm applies the harmonizer's trained-spacing policy; ``name`` (the file) is named in errors."""

    array: np.ndarray
    spacing: Sequence[float] | None = None
    name: str | None = None


@dataclass(frozen=True)
class SensitivityCurve:
    """Per-slice ``mse`` ([-1, 1]² units) and ``ssim`` (unitless), each (S, N) for ``sigmas`` (S,) in [-1, 1]
    units and N slices, of one harmonizer with HU ``window`` in ``mode``."""

    sigmas: np.ndarray
    window: tuple[float, float]
    mode: str
    mse: np.ndarray
    ssim: np.ndarray

    @property
    def sigma_hu(self) -> np.ndarray:
        """σ in HU (S,)."""
        return np.array([sigma_to_hu(s, self.window) for s in self.sigmas])

    @property
    def n_slices(self) -> int:
        return int(self.mse.shape[1])

    def summary(self) -> list[dict[str, Any]]:
        """One row per σ: ``sigma``, ``sigma_hu``, ``n`` (slices), ``mse_mean``, ``mse_sd``, ``ssim_mean``,
        ``ssim_sd`` (SD over slices, ddof 1; NaN for one slice)."""
        rows = []
        for k, sigma in enumerate(self.sigmas):
            rows.append({"sigma": float(sigma), "sigma_hu": sigma_to_hu(float(sigma), self.window),
                         "n": self.n_slices, "mse_mean": float(np.mean(self.mse[k])), "mse_sd": _sd(self.mse[k]),
                         "ssim_mean": float(np.mean(self.ssim[k])), "ssim_sd": _sd(self.ssim[k])})
        return rows


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else math.nan


def sigma_to_hu(sigma: float, window: tuple[float, float]) -> float:
    """σ in [-1, 1] units → HU for the HU ``window`` (hu_min, hu_max): ``σ (hu_max − hu_min) / 2``."""
    return float(sigma) * (float(window[1]) - float(window[0])) / 2.0


def harmonizer_window(harmonizer: Any, window: Sequence[float] | None = None) -> tuple[float, float]:
    """The HU window (hu_min, hu_max) of the harmonizer's [-1, 1] network space: its ``hu_min``/``hu_max``
    (through wrappers), else ``window``. A ``window`` that disagrees with the harmonizer's, or neither, is a
    :class:`ConfigError`."""
    own = (getattr(harmonizer, "hu_min", None), getattr(harmonizer, "hu_max", None))
    given = None if window is None else (float(window[0]), float(window[1]))
    if given is not None and not given[1] > given[0]:
        raise ConfigError(None, f"the HU window must have hu_max > hu_min, got {list(given)}")
    if own[0] is None or own[1] is None:
        if given is None:
            raise ConfigError(None, "the harmonizer exposes no hu_min/hu_max: give its HU window (e.g. -1024,3072) "
                                    "to convert σ to HU")
        return given
    found = (float(own[0]), float(own[1]))
    if given is not None and given != found:
        raise ConfigError(None, f"the given HU window {list(given)} differs from the harmonizer's {list(found)}")
    return found


def noise_field(shape: Sequence[int], seed: int, index: int) -> np.ndarray:
    """Standard-normal noise (float64, ``shape``) of slice stack ``index``: ``default_rng([seed, index])``."""
    return np.random.default_rng([int(seed), int(index)]).standard_normal(tuple(shape))


def _check_sigmas(sigmas: Iterable[float]) -> np.ndarray:
    values = np.asarray([float(s) for s in sigmas], dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError(None, f"sigmas must be finite numbers >= 0 (in [-1, 1] units), got {values.tolist()}")
    return values


def _stacks(stacks: SliceStack | np.ndarray | Iterable[SliceStack | np.ndarray]) -> Iterable[SliceStack]:
    items = [stacks] if isinstance(stacks, SliceStack | np.ndarray) else stacks
    for item in items:
        stack = item if isinstance(item, SliceStack) else SliceStack(np.asarray(item))
        if np.ndim(stack.array) != 3:
            raise ValueError(f"a slice stack must be (N, Y, X) HU, got shape {np.shape(stack.array)}")
        yield stack


def _harmonize(harmonizer: Harmonizer, hu: np.ndarray, source: str, target: str, stack: SliceStack) -> np.ndarray:
    hu = np.asarray(hu, dtype=np.float32)
    if stack.spacing is None:
        out = call_harmonizer(harmonizer, hu, source, target)
    else:
        out, _ = harmonize_at_trained_spacing(harmonizer, hu, stack.spacing, source, target, where=stack.name)
    out = np.asarray(out)
    if out.shape != hu.shape:
        raise ConfigError(stack.name, f"the harmonizer returned shape {out.shape} for a {hu.shape} input")
    return out


def _scores(images: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice MSE and SSIM of [-1, 1] images (N, Y, X) against references (N, Y, X)."""
    mse = np.mean((images - references) ** 2, axis=(1, 2))
    ssim = np.array([structural_similarity(r, i, data_range=SSIM_DATA_RANGE) for i, r in zip(images, references,
                                                                                          strict=True)])
    return mse, ssim


def sensitivity_curve(harmonizer: Harmonizer, stacks: SliceStack | np.ndarray | Iterable[SliceStack | np.ndarray],
                      source: str, target: str, sigmas: Iterable[float] = DEFAULT_SIGMAS, seed: int = 0,
                      window: Sequence[float] | None = None, mode: str = "output") -> SensitivityCurve:
    """MSE and SSIM vs σ (module docstring) of ``harmonizer`` on ``stacks``: slice stacks (N, Y, X) float32 HU
    of ``source``-kernel images (arrays or :class:`SliceStack`, one stack or an iterable, read lazily);
    ``sigmas`` in [-1, 1] units; ``window`` the HU window when the harmonizer has no hu_min/hu_max
    (:func:`harmonizer_window`); ``mode`` "output" or "cycle". Memory: one stack at a time."""
    if mode not in MODES:
        raise ConfigError(None, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    values = _check_sigmas(sigmas)
    lo, hi = harmonizer_window(harmonizer, window)
    mse: list[np.ndarray] = []
    ssim: list[np.ndarray] = []
    for index, stack in enumerate(_stacks(stacks)):
        x = np.asarray(stack.array, dtype=np.float32)
        z = noise_field(x.shape, seed, index)
        if mode == "output":
            perturbed, path = x, (source, target)
            reference = hu_to_unit(_harmonize(harmonizer, x, source, target, stack), lo, hi)
        else:
            perturbed, path = _harmonize(harmonizer, x, source, target, stack), (target, source)
            reference = hu_to_unit(x, lo, hi)
        reference = reference.astype(np.float64)
        per_sigma = []
        for sigma in values:
            noisy = perturbed.astype(np.float64) + sigma_to_hu(sigma, (lo, hi)) * z
            out = hu_to_unit(_harmonize(harmonizer, noisy, *path, stack), lo, hi).astype(np.float64)
            per_sigma.append(_scores(out, reference))
        mse.append(np.stack([m for m, _ in per_sigma]))
        ssim.append(np.stack([s for _, s in per_sigma]))
    if not mse:
        raise ValueError("no slices given")
    return SensitivityCurve(values, (lo, hi), mode, np.concatenate(mse, axis=1), np.concatenate(ssim, axis=1))
