"""Procedural 3-D chest phantoms with tissue labels and a noise-free ground truth in HU.

The phantom is drawn on a fine grid (in-plane supersampling ``fine_factor`` and thin
sub-slices), then averaged to the output grid, so partial-volume effects are realistic.
``Phantom.fine_hu`` keeps the thick-slice, fine in-plane HU that the CT simulator projects.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ctharmonize.errors import ConfigError
from ctharmonize.io.volume import HeaderSummary, Volume
from ctharmonize.simulation.anatomy import AnatomyParams, Plane, draw_anatomy_params, paint_cross_section
from ctharmonize.simulation.labels import LABEL_CODES as L
from ctharmonize.simulation.rasterize import Grid, segment_mask, sphere_mask
from ctharmonize.simulation.vessels import grow_tree

__all__ = ["Phantom", "generate_phantom", "draw_emphysema_fraction"]


@dataclass
class Phantom:
    """A simulated chest; arrays are (Z, Y, X) on the output grid.

    Attributes:
        hu: float32 noise-free ground truth in **HU**.
        labels: uint8 tissue codes (:data:`~ctharmonize.simulation.labels.TISSUE_LABELS`).
        lung: uint8 lung mask, 1 = right, 2 = left (lung field incl. vessels/nodules, excl.
            trachea and main bronchi).
        spacing: (sx, sy, sz) mm; ``origin``/``direction``: LPS geometry as in :class:`Volume`.
        emphysema_fraction: the target emphysema volume fraction of the lungs (0..1).
        seed: the seed it was generated from.
        fine_hu: float32 (Z, Y*f, X*f) thick-slice HU at ``fine_factor`` x finer in-plane sampling.
        info: the drawn anatomy/HU parameters and bookkeeping.
    """

    hu: np.ndarray
    labels: np.ndarray
    lung: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    emphysema_fraction: float
    seed: int
    fine_hu: np.ndarray | None = field(default=None, repr=False)
    fine_factor: int = 1
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)  # type: ignore[return-value]

    def volume(self, array: np.ndarray | None = None) -> Volume:
        """The ground truth (or ``array``, e.g. labels) as a :class:`Volume` on the phantom grid."""
        header = HeaderSummary(manufacturer="ctharmonize", manufacturer_model_name="phantom",
                               convolution_kernel=("GROUND_TRUTH",), slice_thickness=self.spacing[2],
                               patient_id=f"sim-{self.seed}")
        return Volume(self.hu if array is None else array, self.spacing, self.origin, self.direction.copy(), header)

    def true_laa950(self) -> float:
        """Ground-truth LAA-950 (%) of the noise-free volume within the lung mask."""
        lung = self.lung > 0
        return float(100.0 * np.count_nonzero(self.hu[lung] < -950.0) / max(np.count_nonzero(lung), 1))


def draw_emphysema_fraction(rng: np.random.Generator) -> float:
    """A per-subject emphysema fraction (0..0.45), skewed towards mild disease as in screening cohorts."""
    return float(0.45 * rng.beta(0.7, 4.0))


def _block_mean(a: np.ndarray, fz: int, fy: int, fx: int) -> np.ndarray:
    z, y, x = a.shape[0] // fz, a.shape[1] // fy, a.shape[2] // fx
    return a.reshape(z, fz, y, fy, x, fx).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def _block_mode(a: np.ndarray, fz: int, fy: int, fx: int) -> np.ndarray:
    """Most frequent uint8 value per (fz, fy, fx) block (ties -> the lower value)."""
    z, y, x = a.shape[0] // fz, a.shape[1] // fy, a.shape[2] // fx
    if fz == fy == fx == 1:
        return a.copy()
    nv = int(a.max()) + 1
    cell = np.arange(y * x, dtype=np.int64).reshape(1, y, 1, x, 1) * nv
    out = np.empty((z, y, x), a.dtype)
    for k in range(z):
        keys = cell + a[k * fz:(k + 1) * fz].reshape(fz, y, fy, x, fx)
        counts = np.bincount(keys.ravel(), minlength=y * x * nv).reshape(y * x, nv)
        out[k] = counts.argmax(axis=1).reshape(y, x)
    return out


class _PointSampler:
    """Random voxel centres (z, y, x mm) inside a fixed mask, sampled on every 2nd row/column.

    The candidate indices (and the cumulative weights of a weighted draw) are computed once,
    so repeated draws cost O(n log N). Draws consume the generator exactly like
    ``rng.choice(candidates, size=n[, p=weights])``.
    """

    def __init__(self, mask: np.ndarray, grid: Grid):
        self.grid = grid
        self.sub = (mask.shape[0], (mask.shape[1] + 1) // 2, (mask.shape[2] + 1) // 2)
        self.idx = np.flatnonzero(mask[:, ::2, ::2])
        self._cdf: dict[int, np.ndarray] = {}

    def __call__(self, n: int, rng: np.random.Generator, weight_z: np.ndarray | None = None) -> np.ndarray:
        grid, idx = self.grid, self.idx
        if idx.size == 0:
            return np.zeros((0, 3))
        if weight_z is not None:
            key = id(weight_z)
            if key not in self._cdf:
                cdf = weight_z[idx // (self.sub[1] * self.sub[2])].cumsum()
                self._cdf[key] = cdf / cdf[-1]
            pick = idx[self._cdf[key].searchsorted(rng.random(n), side="right")]
        else:
            pick = idx[rng.integers(0, idx.size, size=n)]
        k, j, i = np.unravel_index(pick, self.sub)
        jitter = rng.uniform(-0.5, 0.5, size=(n, 3)) * np.array([grid.z[1] - grid.z[0] if grid.z.size > 1 else 0,
                                                                 2 * (grid.y[1] - grid.y[0]), 2 * (grid.x[1] - grid.x[0])])
        return np.stack([grid.z[k], grid.y[2 * j], grid.x[2 * i]], axis=1) + jitter


def generate_phantom(
    seed: int = 0,
    size: int = 128,
    slices: int = 16,
    emphysema_fraction: float | None = None,
    nodules: bool = True,
    *,
    fov_mm: float = 360.0,
    fov_center_mm: tuple[float, float] = (0.0, 0.0),
    slice_thickness: float = 2.5,
    fine_factor: int | None = None,
    body_scale: float = 1.0,
) -> Phantom:
    """A random but reproducible chest phantom.

    Args:
        seed: random seed; the same seed gives the same phantom.
        size: in-plane matrix (size x size) of the output grid.
        slices: number of output slices (centred 20 mm below the carina).
        emphysema_fraction: target emphysema volume fraction of the lungs (0..0.6); None draws one.
        nodules: add 1-2 solid nodules.
        fov_mm: field of view (mm) = size x pixel spacing.
        fov_center_mm: (x, y) LPS position of the grid centre relative to the body centre.
        slice_thickness: slice spacing = thickness (mm).
        fine_factor: in-plane supersampling; None picks ~0.75 mm fine pixels (1..3).
        body_scale: patient size: the body semi-axes scale by it, subcutaneous fat by its
            square (1 = the drawn adult; the body still fits the FOV).

    Returns:
        :class:`Phantom` with ``hu`` (HU), ``labels``, ``lung``.
    """
    if int(size) < 16 or int(slices) < 1:
        raise ConfigError(None, f"phantom size must be >= 16 and slices >= 1 (got size={size}, slices={slices})")
    if emphysema_fraction is not None and not 0.0 <= float(emphysema_fraction) <= 0.6:
        raise ConfigError(None, f"emphysema_fraction must be within 0..0.6, got {emphysema_fraction}")
    size, slices = int(size), int(slices)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(6)]
    rng_anat, rng_tex, rng_vessel, rng_emph, rng_nod, rng_misc = streams
    if emphysema_fraction is None:
        emphysema_fraction = draw_emphysema_fraction(rng_misc)
    dxy = float(fov_mm) / size
    ss = int(fine_factor) if fine_factor else int(min(max(math.ceil(dxy / 0.75 - 1e-6), 1), 3))
    ssz = 2 if slice_thickness > 1.5 else 1
    nf, dxf = size * ss, dxy / ss
    dz, dzf = float(slice_thickness), float(slice_thickness) / ssz
    body_c = rng_misc.uniform(-5.0, 5.0, size=2)  # body centre (x, y) LPS
    grid_c = np.asarray(fov_center_mm, float) + body_c * 0  # grid centre in LPS relative to the body
    slab_c = -20.0 + float(rng_misc.uniform(-5.0, 5.0))
    z0 = slab_c - (slices - 1) / 2 * dz
    # fine coordinates relative to the body centre
    xf = grid_c[0] - body_c[0] + (np.arange(nf) - (nf - 1) / 2) * dxf
    yf = grid_c[1] - body_c[1] + (np.arange(nf) - (nf - 1) / 2) * dxf
    zf = (z0 + (np.arange(slices * ssz) // ssz) * dz + ((np.arange(slices * ssz) % ssz) + 0.5) / ssz * dz - dz / 2)
    max_a = fov_mm / 2 - 14.0 - float(np.hypot(*fov_center_mm)) - 5.0
    p: AnatomyParams = draw_anatomy_params(rng_anat, max_a)
    if body_scale != 1.0:
        if not 0.5 <= float(body_scale) <= 1.6:
            raise ConfigError(None, f"body_scale must be within 0.5..1.6, got {body_scale}")
        a_new = min(p.a * float(body_scale), max_a)
        f = a_new / p.a
        p = dataclasses.replace(p, a=a_new, b=p.b * f, sat=p.sat * f * f, sat_post=p.sat_post * f * f)

    plane = Plane(xf, yf, p.harmonics)
    Y = plane.Y
    lab = np.empty((zf.size, nf, nf), np.uint8)
    hu = np.empty((zf.size, nf, nf), np.float32)
    side = np.empty((zf.size, nf, nf), np.uint8)
    for k, s in enumerate(zf):
        lab[k], hu[k], side[k] = paint_cross_section(plane, float(s), p)
    lung_f = side > 0
    grid = Grid(zf, yf, xf)

    # parenchyma: gravity gradient (dependent = posterior denser) + correlated texture
    tex = rng_tex.standard_normal((zf.size, size, size)).astype(np.float32)
    tex = ndimage.gaussian_filter(tex, sigma=(2.0 / dzf, 2.0 / dxy, 2.0 / dxy))
    tex *= rng_tex.uniform(8.0, 16.0) / max(float(tex.std()), 1e-6)
    if ss > 1:
        tex = np.repeat(np.repeat(tex, ss, axis=1), ss, axis=2)
    hu += np.where(lung_f, tex + (25.0 * Y / p.b)[None], 0.0).astype(np.float32)

    # vessel trees (artery + vein per lung) with companion bronchi along the large arteries
    paren = lung_f.copy()
    n_vessel_vox = 0
    for code, sign in ((1, -1.0), (2, 1.0)):
        mask = side == code
        if not mask.any():
            continue
        sampler = _PointSampler(mask, grid)
        pts = sampler(8, rng_vessel)
        medial = float(np.percentile(np.abs(pts[:, 2]), 5)) if len(pts) else 40.0
        yc = float(np.median(pts[:, 1])) if len(pts) else 0.0
        for kind, root_z, root_r, dy in (("artery", -28.0, 7.0, -5.0), ("vein", -55.0, 6.5, 12.0)):
            root = np.array([root_z, yc + dy, sign * max(medial - 8.0, 15.0)])
            targets = sampler(256, rng_vessel)
            for a, b, r, gen in grow_tree(root, targets, rng_vessel, root_radius=root_r, min_radius=0.55):
                sl, m = segment_mask(grid, a, b, r)
                if sl is not None:
                    inside = m & lung_f[sl]
                    lab[sl][inside] = L["pulmonary_vessel"]
                    hu[sl][inside] = p.hu_blood
                    paren[sl] &= ~inside
                    n_vessel_vox += int(inside.sum())
                if kind == "artery" and gen <= 4 and r >= 1.5:
                    d = b - a
                    perp = np.cross(d, np.array([1.0, 0.0, 0.0]))
                    perp /= np.linalg.norm(perp) + 1e-9
                    off = perp * (1.9 * r + 1.0)
                    rb = 0.8 * r
                    for rad, val in ((rb + max(0.6, 0.2 * rb), p.hu_soft - 20.0), (rb, -1000.0)):
                        sl2, m2 = segment_mask(grid, a + off, b + off, rad)
                        if sl2 is not None:
                            inside = m2 & lung_f[sl2]
                            hu[sl2][inside] = val
                            lab[sl2][inside] = side[sl2][inside]
                            paren[sl2] &= ~inside

    # nodules
    n_nod = int(rng_nod.integers(1, 3)) if nodules else 0
    nod_info = []
    lung_points = _PointSampler(lung_f, grid)
    for c in lung_points(n_nod, rng_nod) if n_nod else []:
        r = float(rng_nod.uniform(3.0, 8.0))
        sl, m = sphere_mask(grid, c, r)
        if sl is not None:
            inside = m & lung_f[sl]
            lab[sl][inside] = L["nodule"]
            hu[sl][inside] = float(rng_nod.normal(35.0, 10.0))
            paren[sl] &= ~inside
            nod_info.append({"center_zyx_mm": c.tolist(), "radius_mm": r})

    # emphysema: bullae (subpleural, ~ -1000 HU) and clusters of centrilobular holes (-960..-990 HU)
    n_lung = int(lung_f.sum())
    target = float(emphysema_fraction) * n_lung
    emph = np.zeros_like(lung_f)
    count = 0
    zw = np.exp((zf - zf.max()) / 80.0)  # upper-zone predominance
    bullae_share = float(rng_emph.uniform(0.05, 0.5))
    guard = 0
    while count < target and guard < 4000 and n_lung:
        guard += 1
        bulla = count < bullae_share * target
        if bulla:
            centres = lung_points(1, rng_emph, zw)
            radii = [float(rng_emph.uniform(6.0, 18.0))]
            values = [float(rng_emph.uniform(-1000.0, -990.0))]
        else:
            c0 = lung_points(1, rng_emph, zw)[0]
            n_h = int(rng_emph.integers(6, 16))
            centres = c0 + rng_emph.normal(0.0, 6.0, size=(n_h, 3))
            radii = rng_emph.uniform(2.0, 5.0, size=n_h).tolist()
            values = rng_emph.uniform(-990.0, -960.0, size=n_h).tolist()
        for c, r, v in zip(centres, radii, values, strict=False):
            sl, m = sphere_mask(grid, c, r)
            if sl is None:
                continue
            new = m & paren[sl] & ~emph[sl]
            emph[sl] |= new
            hu[sl][new] = v + rng_emph.normal(0.0, 3.0, size=int(new.sum())).astype(np.float32)
            count += int(new.sum())

    # output grid
    fine_hu = _block_mean(hu, ssz, 1, 1)
    out_hu = _block_mean(fine_hu, 1, ss, ss)
    labels = _block_mode(lab, ssz, ss, ss)
    lung = _block_mode(side, ssz, ss, ss)
    lung[labels == L["airway"]] = 0
    lung[labels == L["right_lung"]] = 1
    lung[labels == L["left_lung"]] = 2
    spacing = (dxy, dxy, dz)
    origin = (float(fov_center_mm[0] + body_c[0] * 0 - (size - 1) / 2 * dxy),
              float(fov_center_mm[1] - (size - 1) / 2 * dxy), float(z0))
    info = {"anatomy": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(p).items()},
            "body_center_lps_mm": body_c.tolist(), "fine_emphysema_fraction": count / max(n_lung, 1),
            "bullae_share": bullae_share, "nodules": nod_info, "vessel_fraction": n_vessel_vox / max(n_lung, 1),
            "fov_mm": float(fov_mm), "fov_center_mm": [float(v) for v in fov_center_mm],
            "body_scale": float(body_scale)}
    return Phantom(out_hu, labels, lung, spacing, origin, np.eye(3), float(emphysema_fraction), int(seed),
                   fine_hu=fine_hu, fine_factor=ss, info=info)
