"""Tiny synthetic chest phantoms for the segmentation tests (test helper, not a test module).

Geometry in mm, arrays (Z, Y, X), spacing (sx, sy, sz). The head is at the LAST slice and column
index increasing = patient left (identity direction, LPS), so the right lung is at small x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ChestPhantom:
    hu: np.ndarray  # float32 HU (Z, Y, X)
    lung: np.ndarray  # uint8 1 = right, 2 = left (vessels inside included)
    airway: np.ndarray  # bool trachea + main bronchi
    muscle: np.ndarray  # bool
    sat: np.ndarray  # bool subcutaneous fat
    vat: np.ndarray  # bool visceral / intermuscular fat
    bone: np.ndarray  # bool
    spacing: tuple[float, float, float]


def chest_phantom(
    noise_sd: float = 20.0,
    size: int = 96,
    slices: int = 40,
    spacing: tuple[float, float, float] = (3.5, 3.5, 5.0),
    padding: float | None = -2048.0,
    fov_radius_mm: float | None = 160.0,
    lung_gap_mm: float = 40.0,
    seed: int = 0,
) -> ChestPhantom:
    """Ellipse body (skin/SAT/muscle wall/VAT) with two ellipsoid lungs holding vessels, a trachea
    and main bronchi, a spine, a table below the body and padding outside a circular FOV.
    ``lung_gap_mm`` is the distance between the lungs' medial tips (0 or less: joined lungs)."""
    rng = np.random.default_rng(seed)
    sx, sy, sz = spacing
    z, y, x = np.meshgrid(
        (np.arange(slices) - (slices - 1) / 2) * sz,
        (np.arange(size) - (size - 1) / 2) * sy,
        (np.arange(size) - (size - 1) / 2) * sx,
        indexing="ij",
    )
    hu = np.full(z.shape, -1000.0)
    ax, ay = 150.0, 110.0  # body semi-axes (x, y)
    r = np.sqrt((x / ax) ** 2 + (y / ay) ** 2)
    body = r <= 1.0
    skin = body & (r > 0.97)
    sat = body & ~skin & (r > 0.83)
    muscle = body & (r <= 0.83) & (r > 0.70)
    inner = r <= 0.70
    hu[body] = 40.0
    hu[sat] = -100.0
    hu[muscle] = 50.0
    # a sternum and a spine in the wall, a VAT blob (intra-thoracic fat) anterior in the mediastinum
    sternum = ((x / 14.0) ** 2 + ((y + 0.76 * ay) / 9.0) ** 2) <= 1.0
    spine = ((x / 20.0) ** 2 + ((y - 0.62 * ay) / 20.0) ** 2) <= 1.0
    ribs = np.zeros(z.shape, dtype=bool)  # rib cross-sections on the inner edge of the muscle wall
    for ang in np.linspace(0, 2 * np.pi, 18, endpoint=False):
        rx_, ry_ = 0.74 * ax * np.cos(ang), 0.74 * ay * np.sin(ang)
        ribs |= ((x - rx_) ** 2 + (y - ry_) ** 2) <= 7.0**2
    bone = (sternum | spine | ribs) & body
    hu[bone] = 700.0
    muscle &= ~bone
    vat = inner & (((x / 18.0) ** 2 + ((y + 0.55 * ay) / 10.0) ** 2) <= 1.0)
    hu[vat] = -100.0
    # lungs: ellipsoids; apex at the top (last slices)
    half_gap = lung_gap_mm / 2.0
    lx = 52.0
    cz = -0.1 * slices * sz
    hz = 0.42 * slices * sz
    lungs = np.zeros(z.shape, dtype=np.uint8)
    for lab, sign in ((1, -1.0), (2, 1.0)):
        cx = sign * (half_gap + lx)
        ell = ((x - cx) / lx) ** 2 + ((y + 5.0) / 70.0) ** 2 + ((z - cz) / hz) ** 2 <= 1.0
        lungs[ell & (r <= 0.66)] = lab  # pleura / intercostal soft tissue between lung and wall
    hu[lungs > 0] = -850.0
    # vessels: small dense blobs inside the lungs
    for _ in range(40):
        c = np.array([rng.uniform(-0.4, 0.4) * slices * sz, rng.uniform(-60, 50), rng.uniform(-120, 120)])
        blob = ((z - c[0]) / 6.0) ** 2 + ((y - c[1]) / 4.0) ** 2 + ((x - c[2]) / 4.0) ** 2 <= 1.0
        hu[blob & (lungs > 0)] = 40.0
    # trachea (top half, centre, slightly anterior) and two main bronchi reaching the lungs
    carina = cz + 0.15 * hz
    trachea = ((x**2 + (y + 20.0) ** 2) <= 9.0**2) & (z >= carina)
    airway = trachea.copy()
    drop = 30.0  # the main bronchi descend 30 mm while reaching 12 mm into each lung
    for sign in (-1.0, 1.0):
        t = np.clip((carina - z) / drop, 0, 1)
        bx = sign * t * (half_gap + 12.0)
        bronchus = (((x - bx) ** 2 + (y + 20.0) ** 2) <= 6.0**2) & (z < carina) & (z >= carina - drop)
        airway |= bronchus & (lungs == 0) & body
        hu[bronchus & body] = -1000.0  # intrapulmonary part is air too, but belongs to the lung
    hu[airway] = -1000.0
    airway &= body
    # table 25 mm below the body
    table = (y > ay + 25.0) & (y < ay + 35.0) & (np.abs(x) < 170.0)
    hu[table] = 200.0
    hu = hu + rng.normal(0.0, noise_sd, hu.shape)
    if fov_radius_mm is not None and padding is not None:
        hu[np.sqrt(x**2 + y**2) > fov_radius_mm] = padding
    return ChestPhantom(
        hu=hu.astype(np.float32),
        lung=lungs,
        airway=airway,
        muscle=muscle,
        sat=sat,
        vat=vat,
        bone=bone,
        spacing=spacing,
    )


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A and B| / (|A| + |B|) with numpy."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = a.sum() + b.sum()
    return float(2.0 * np.logical_and(a, b).sum() / s) if s else 1.0
