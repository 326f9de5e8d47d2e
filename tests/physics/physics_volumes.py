"""Small test volumes for the physics tools, drawn by the tests themselves (cached per session).

``chest``: a simulated adult chest (0.87 mm pixels, 3 slices, fine phantom grid 4x finer so the
phantom's own pixels barely blur the edge) scanned by both vendors' kernels, plain FBP unless
``ir``/``edge`` processing is asked for. ``ellipse_edge``: an analytic skin–air edge (ellipse, 2 mm
skin of +30 HU over fat at -100 HU) blurred by a known Gaussian PSF and point-sampled, so that its
MTF is exactly exp(-2π²σ²f²).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from ctharmonize.simulation import Phantom, generate_phantom, simulate_scan

SIZE, FOV_MM, SLICES = 416, 360.0, 3  # 0.865 mm pixels


@lru_cache(maxsize=4)
def chest(seed: int, mas: float | None = None, ir: float = 0.0, edge: float = 0.0) -> tuple[Phantom, dict]:
    """(phantom, {kernel domain: Volume}) for siemens_b30f/b50f and ge_standard/bone."""
    ph = generate_phantom(seed=seed, size=SIZE, slices=SLICES, fov_mm=FOV_MM, fine_factor=4)
    vols = {}
    for vendor in ("siemens", "ge"):
        vols.update(simulate_scan(ph, vendor, mas=mas, seed=seed + 1, ir_strength=ir, edge_strength=edge))
    return ph, vols


@lru_cache(maxsize=2)
def noise_free(seed: int) -> dict:
    """{kernel domain: Volume}: the noise-free FBP reconstructions of ``chest(seed)`` (the NPS reference:
    the same blur, no noise)."""
    ph, _ = chest(seed)
    vols = {}
    for vendor in ("siemens", "ge"):
        vols.update(simulate_scan(ph, vendor, noise=False))
    return vols


@lru_cache(maxsize=4)
def ellipse_edge(sigma_mm: float, dx: float = 0.86, n: int = 256, table: bool = False) -> np.ndarray:
    """(3, n, n) float32 HU: the analytic edge image (module docstring); ``table``: a 200 HU slab in the air
    5 mm behind the body (the posterior side, large row index)."""
    ss = 8
    c = (np.arange(n * ss) - (n * ss - 1) / 2) * dx / ss
    x, y = np.meshgrid(c, c)
    a, b = 75.0, 55.0
    img = np.full(x.shape, -1000.0)
    img[np.hypot(x / a, y / b) <= 1] = 30.0
    img[np.hypot(x / (a - 2), y / (b - 2)) <= 1] = -100.0
    if table:
        img[(y > b + 5.0) & (y < b + 12.0) & (np.abs(x) < 60.0)] = 200.0
    img = ndimage.gaussian_filter(img, sigma_mm / (dx / ss))
    return np.repeat(img[ss // 2::ss, ss // 2::ss][None], 3, axis=0).astype(np.float32)


def gaussian_mtf50(sigma_mm: float) -> float:
    """MTF50 (lp/cm) of a Gaussian PSF of SD ``sigma_mm``: exp(-2π²σ²f²) = 0.5."""
    return float(np.sqrt(np.log(2.0) / 2.0) / (np.pi * sigma_mm) * 10.0)
