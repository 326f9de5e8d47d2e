"""Reconstruction filters: ramp x kernel MTF, sampled for the Fourier-domain FBP."""

from __future__ import annotations

import numpy as np

from ctharmonize.simulation.kernels import KernelSpec

__all__ = ["ramp_filter", "kernel_filter"]


def ramp_filter(length: int, dt: float) -> np.ndarray:
    """Ram-Lak ramp (1/mm) at ``np.fft.rfftfreq(length, dt)``.

    The DFT of the band-limited spatial ramp kernel (h[0] = 1/(4 dt^2), h[odd n] = -1/(pi n dt)^2),
    which equals |rho| except near rho = 0, where it keeps the correct DC weight (Kak & Slaney).
    """
    n = np.arange(length) - length // 2
    h = np.zeros(length)
    h[length // 2] = 1.0 / (4 * dt * dt)
    odd = n % 2 == 1
    h[odd] = -1.0 / (np.pi * n[odd] * dt) ** 2
    return np.fft.rfft(np.fft.ifftshift(h)).real * dt


def kernel_filter(kernel: KernelSpec, length: int, dt: float) -> np.ndarray:
    """Ramp x target MTF of ``kernel`` at ``np.fft.rfftfreq(length, dt)`` (cycles/mm -> lp/cm x 10)."""
    rho = np.fft.rfftfreq(length, d=dt)
    return ramp_filter(length, dt) * kernel.mtf(rho * 10.0)
