"""Axial cross-sections of the procedural chest (body wall, bones, mediastinum, lungs).

Everything is drawn from analytic shapes in millimetres on one axial plane at height ``s``
(mm above the carina); the subject's random parameters come from :class:`AnatomyParams`.
Coordinates: ``X`` = LPS x relative to the body centre (+ = patient left), ``Y`` = LPS y
(+ = posterior). Vessels, nodules and emphysema are added in 3-D afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctharmonize.simulation.labels import LABEL_CODES as L

__all__ = ["AnatomyParams", "Plane", "draw_anatomy_params", "paint_cross_section"]


@dataclass
class AnatomyParams:
    """Per-subject shape and HU parameters (mm, HU)."""

    a: float  # body LR semi-axis at mid chest
    b: float  # body AP semi-axis
    shape_q: float  # super-ellipse exponent of the body outline
    harmonics: np.ndarray  # (K, 2) outline perturbation (cos, sin) per angular order
    sat: float  # subcutaneous fat thickness
    sat_post: float  # extra posterior/lateral fat
    muscle: float  # chest-wall muscle thickness
    pectoral: float  # extra anterior-lateral (pectoral) muscle
    rib_spacing: float
    rib_phase: float
    rib_slope: float
    disc_phase: float
    heart_x: float
    heart_size: float
    dome_right: float  # height (s) of the right diaphragm dome
    dome_left: float
    apex: float  # height (s) of the lung apices
    hu_fat: float
    hu_muscle: float
    hu_blood: float
    hu_soft: float
    hu_skin: float
    hu_cortical: float
    hu_trabecular: float
    hu_lung: float
    hu_liver: float


def draw_anatomy_params(rng: np.random.Generator, max_semi_axis: float) -> AnatomyParams:
    """Random, plausible adult chest parameters; the body LR semi-axis stays below ``max_semi_axis``."""
    a = float(min(rng.uniform(128.0, 158.0), max_semi_axis))
    return AnatomyParams(
        a=a,
        b=float(min(rng.uniform(0.68, 0.80) * a, a)),
        shape_q=float(rng.uniform(2.1, 2.6)),
        harmonics=rng.normal(0.0, 0.012, size=(4, 2)),
        sat=float(rng.uniform(5.0, 24.0)),
        sat_post=float(rng.uniform(0.0, 14.0)),
        muscle=float(rng.uniform(7.0, 13.0)),
        pectoral=float(rng.uniform(6.0, 18.0)),
        rib_spacing=float(rng.uniform(22.0, 27.0)),
        rib_phase=float(rng.uniform(0.0, 27.0)),
        rib_slope=float(rng.uniform(14.0, 24.0)),
        disc_phase=float(rng.uniform(0.0, 27.0)),
        heart_x=float(rng.uniform(10.0, 28.0)),
        heart_size=float(rng.uniform(0.85, 1.15)),
        dome_right=float(rng.uniform(-150.0, -120.0)),
        dome_left=float(rng.uniform(-165.0, -135.0)),
        apex=float(rng.uniform(80.0, 105.0)),
        hu_fat=float(rng.normal(-100.0, 10.0)),
        hu_muscle=float(rng.normal(45.0, 5.0)),
        hu_blood=float(rng.normal(40.0, 3.0)),
        hu_soft=float(rng.normal(38.0, 4.0)),
        hu_skin=float(rng.normal(30.0, 4.0)),
        hu_cortical=float(rng.uniform(700.0, 1000.0)),
        hu_trabecular=float(rng.uniform(200.0, 300.0)),
        hu_lung=float(np.clip(rng.normal(-850.0, 30.0), -910.0, -790.0)),
        hu_liver=float(rng.normal(58.0, 6.0)),
    )


class Plane:
    """Slice-invariant coordinate fields of one axial grid (mm, relative to the body centre).

    Args:
        x: 1-D column coordinates (increasing), y: 1-D row coordinates (increasing).
        harmonics: (K, 2) outline perturbation coefficients.
    """

    _FIELDS = ("X", "Y", "r", "phi", "sin_phi", "cos_phi", "pert", "cos2phi", "absX", "Yneg", "Ypos")

    def __init__(self, x: np.ndarray, y: np.ndarray, harmonics: np.ndarray):
        self.x, self.y = np.asarray(x, float), np.asarray(y, float)
        self.X, self.Y = np.meshgrid(self.x, self.y)
        self.r = np.hypot(self.X, self.Y) + 1e-6
        self.phi = np.arctan2(self.Y, self.X)
        self.sin_phi = self.Y / self.r
        self.cos_phi = self.X / self.r
        self.pert = 1.0 + sum(harmonics[k, 0] * np.cos((k + 2) * self.phi) + harmonics[k, 1] * np.sin((k + 2) * self.phi)
                              for k in range(harmonics.shape[0]))
        self.cos2phi = np.cos(2 * self.phi)
        self.absX = np.abs(self.X)
        self.Yneg = np.abs(np.minimum(self.Y, 0.0))
        self.Ypos = np.maximum(self.Y, 0.0)
        self.pert_max = float(self.pert.max())

    def sub(self, win: tuple[slice, slice]) -> Plane:
        """The plane restricted to rows/columns ``win`` (array views, no copies; values unchanged)."""
        out = Plane.__new__(Plane)
        out.x, out.y = self.x[win[1]], self.y[win[0]]
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name)[win])
        out.pert_max = self.pert_max
        return out

    def window(self, cx: float, cy: float, rx: float, ry: float) -> tuple[slice, slice]:
        """Row/column slices covering the box [cx - rx, cx + rx] x [cy - ry, cy + ry]."""
        i0, i1 = np.searchsorted(self.x, [cx - rx, cx + rx])
        j0, j1 = np.searchsorted(self.y, [cy - ry, cy + ry])
        return slice(int(j0), int(j1)), slice(int(i0), int(i1))


def _ellipse(P: Plane, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
    """Normalised squared radius of an (optionally rotated) ellipse, <= 1 inside (inf outside its box)."""
    out = np.full(P.X.shape, np.inf)
    ext = max(rx, ry) if angle else None
    win = P.window(cx, cy, ext or rx, ext or ry)
    dx, dy = P.x[win[1]][None, :] - cx, P.y[win[0]][:, None] - cy
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = c * dx + s * dy, -s * dx + c * dy
    out[win] = (dx / rx) ** 2 + (dy / ry) ** 2
    return out


def _smoothstep(x: float, lo: float, hi: float) -> float:
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3 - 2 * t)


def _outline(s: float, p: AnatomyParams) -> tuple[float, float, float]:
    """(up, a, b): upper-chest blend and the body semi-axes (mm) at height ``s``."""
    up = _smoothstep(s, 20.0, 140.0)
    return up, p.a * (1.0 - 0.10 * up) * (1.0 + 0.02 * np.sin(s / 40.0)), p.b * (1.0 - 0.06 * up)


def paint_cross_section(P: Plane, s: float, p: AnatomyParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (uint8), HU (float32) and lung side (uint8: 1 right, 2 left) of one axial plane.

    Only the bounding box of the body (and the heart, in case it reaches past the outline) is
    computed; everything else is air (label 0, -1000 HU).

    Args:
        P: the plane's coordinate fields (mm relative to the body centre, LPS orientation).
        s: height of the plane in mm above the carina.
        p: subject parameters.
    """
    _, a, b = _outline(s, p)
    pm = max(P.pert_max, 1.0) + 1e-3
    margin = 2.0 * max(abs(P.x[1] - P.x[0]) if P.x.size > 1 else 1.0, abs(P.y[1] - P.y[0]) if P.y.size > 1 else 1.0)
    x0, x1, y0, y1 = -a * pm, a * pm, -b * pm, 0.93 * b * pm
    heart_f = _smoothstep(-s, -5.0, 60.0) * p.heart_size
    if heart_f > 0.05:  # rotated heart ellipse (+5 mm fat) box
        ext = max(62.0, 50.0) * heart_f + 5.0
        x0, x1 = min(x0, p.heart_x - ext), max(x1, p.heart_x + ext)
        y0, y1 = min(y0, -0.2 * b - ext), max(y1, -0.2 * b + ext)
    win = P.window(0.5 * (x0 + x1), 0.5 * (y0 + y1), 0.5 * (x1 - x0) + margin, 0.5 * (y1 - y0) + margin)
    lab = np.zeros(P.X.shape, np.uint8)
    hu = np.full(P.X.shape, -1000.0, np.float32)
    side = np.zeros(P.X.shape, np.uint8)
    lab[win], hu[win], side[win] = _paint(P.sub(win), s, p)
    return lab, hu, side


def _paint(P: Plane, s: float, p: AnatomyParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`paint_cross_section` on a plane that covers everything that is not air."""
    X, Y = P.X, P.Y
    lab = np.zeros(X.shape, np.uint8)
    hu = np.full(X.shape, -1000.0, np.float32)

    def put(mask: np.ndarray, code: int, value: float | np.ndarray) -> None:
        lab[mask] = code
        hu[mask] = value if np.isscalar(value) else value[mask]

    # --- body outline: super-ellipse, narrower towards the shoulders/neck, flat back
    up, a, b = _outline(s, p)
    r, pert = P.r, P.pert
    rho = ((P.absX / a) ** p.shape_q + (P.Yneg / b) ** p.shape_q
           + (P.Ypos / (0.93 * b)) ** 4.0) ** (1.0 / p.shape_q) / pert
    depth = r * (1.0 / np.maximum(rho, 1e-6) - 1.0)  # mm inward from the skin along the ray
    body = rho <= 1.0
    sin_phi, cos_phi = P.sin_phi, P.cos_phi  # sin_phi: +1 posterior, -1 anterior
    put(body, L["other_soft_tissue"], p.hu_skin)  # skin; overwritten inside

    t_sat = p.sat * (1.0 + 0.25 * P.cos2phi) + p.sat_post * np.clip(sin_phi, 0, 1) + 2.0
    put(body & (depth > 2.0), L["subcutaneous_fat"], p.hu_fat)
    t_mus = p.muscle + p.pectoral * np.clip(-sin_phi, 0, 1) * np.abs(cos_phi) * (1 - up * 0.3)
    wall = t_sat + t_mus
    put(body & (depth > t_sat), L["skeletal_muscle"], p.hu_muscle)
    rib_inner = wall + 9.0  # ribs + intercostal muscle layer
    cavity = body & (depth > rib_inner)
    put(cavity, L["visceral_fat"], p.hu_fat)  # mediastinal fat fills what organs leave

    # --- posterior structures: spine, paraspinal muscles
    y_back = 0.93 * b
    yv = y_back - (p.sat + p.sat_post + 2.0) - 58.0  # vertebral body centre
    y_canal = yv + 27.0
    para = (_ellipse(P, -31.0, y_canal + 8.0, 25.0, 22.0) <= 1) | (_ellipse(P, 31.0, y_canal + 8.0, 25.0, 22.0) <= 1)
    put(para & body & (depth > t_sat), L["skeletal_muscle"], p.hu_muscle)

    # --- lungs: cavity minus mediastinum, limited by apex and diaphragm domes
    heart_f = _smoothstep(-s, -5.0, 60.0) * p.heart_size
    med = _ellipse(P, 0.0, yv - 38.0, 30.0, 48.0) <= 1  # posterior/middle mediastinum column
    med |= _ellipse(P, 0.0, -0.45 * b, 20.0, 0.45 * b) <= 1  # anterior mediastinum
    if heart_f > 0.05:
        heart_rx, heart_ry = 62.0 * heart_f, 50.0 * heart_f
        hx, hy = p.heart_x, -0.2 * b
        med |= _ellipse(P, hx, hy, heart_rx + 5, heart_ry + 5, angle=-0.5) <= 1
    med |= _ellipse(P, 0.0, yv, 30.0, 26.0) <= 1  # around the vertebral body
    apex_h = p.apex - ((np.abs(X) - 0.35 * a) ** 2 + (Y + 0.0) ** 2) / 160.0
    dome_c = np.where(X < 0, p.dome_right, p.dome_left)
    dome_h = dome_c - 0.012 * ((np.abs(X) - 0.45 * a) ** 2 + (Y + 0.1 * b) ** 2) * (1 + 0.8 * np.clip(sin_phi, 0, 1))
    lungs = cavity & ~med & ~para & (depth > rib_inner + 1.5) & (s < apex_h) & (s > dome_h)
    side = np.zeros(X.shape, np.uint8)
    side[lungs & (X < 0)] = 1
    side[lungs & (X >= 0)] = 2
    put(lungs & (X < 0), L["right_lung"], p.hu_lung)
    put(lungs & (X >= 0), L["left_lung"], p.hu_lung)
    # abdomen below the domes (liver on the right, stomach/spleen on the left)
    abdo = cavity & ~med & (s <= dome_h)
    put(abdo, L["other_soft_tissue"], np.where(X < 0, p.hu_liver, p.hu_soft).astype(np.float32))

    # --- mediastinal organs
    if heart_f > 0.05:
        hx, hy = p.heart_x, -0.2 * b
        put(_ellipse(P, hx, hy, heart_rx + 4, heart_ry + 4, angle=-0.5) <= 1, L["visceral_fat"], p.hu_fat)
        put(_ellipse(P, hx, hy, heart_rx, heart_ry, angle=-0.5) <= 1, L["heart"], p.hu_blood + 3.0)
    if -75.0 < s < 28.0:  # ascending aorta
        put(_ellipse(P, -14.0, -0.2 * b + 5.0, 15.0, 15.0) <= 1, L["aorta"], p.hu_blood)
    if 22.0 <= s <= 40.0:  # arch: band from the ascending to the descending aorta
        ax0, ay0, ax1, ay1 = -14.0, -0.2 * b + 5.0, 20.0, yv - 20.0
        dx, dy = ax1 - ax0, ay1 - ay0
        t = np.clip(((X - ax0) * dx + (Y - ay0) * dy) / (dx * dx + dy * dy), 0, 1)
        put(np.hypot(X - ax0 - t * dx, Y - ay0 - t * dy) <= 13.0, L["aorta"], p.hu_blood)
    if s < 32.0:  # descending aorta
        put(_ellipse(P, 20.0, yv - 20.0, 12.0, 12.0) <= 1, L["aorta"], p.hu_blood)
    put(_ellipse(P, 4.0, yv - 27.0, 8.0, 6.5) <= 1, L["esophagus"], p.hu_muscle)
    # trachea above the carina, main bronchi below it
    if s >= 0.0:
        tr = _ellipse(P, 0.0, yv - 46.0, 10.0, 9.0) <= 1
        put(tr, L["airway"], p.hu_soft)
        put(_ellipse(P, 0.0, yv - 46.0, 8.0, 7.0) <= 1, L["airway"], -1000.0)
    elif s > -45.0:
        d = -s
        for bx, rad in ((-0.9 * d - 4.0, 7.5), (1.1 * d + 4.0, 6.5)):
            if abs(bx) < 48.0:
                by = yv - 46.0 + 0.2 * d
                put(_ellipse(P, bx, by, rad + 2.0, rad + 1.5) <= 1, L["airway"], p.hu_soft)
                put(_ellipse(P, bx, by, rad, rad - 0.5) <= 1, L["airway"], -1000.0)

    # --- bones
    def bone(mask: np.ndarray, shell: np.ndarray) -> None:
        put(mask, L["bone"], np.where(shell, p.hu_cortical, p.hu_trabecular).astype(np.float32))

    # ribs: slanted tubes in the rib layer (posterior higher than anterior), costal cartilage in front
    z_rib = s - p.rib_slope * sin_phi - p.rib_phase
    k = np.round(z_rib / p.rib_spacing)
    dz = z_rib - k * p.rib_spacing
    q = ((depth - (wall + 4.5)) / 4.0) ** 2 + (dz / 6.0) ** 2
    rib = body & (q <= 1.0) & (s < p.apex - 5.0) & (s > min(p.dome_left, p.dome_right) - 40)
    cartilage = rib & (sin_phi < -0.72)
    bone(rib & ~cartilage & ~para, q > 0.45)
    put(cartilage, L["other_soft_tissue"], 120.0)
    # sternum
    if s < 60.0:
        y_st = -(0.98 * b) + p.sat + p.muscle + 10.0
        st = _ellipse(P, 0.0, y_st, 15.0, 6.0)
        bone(st <= 1, st > 0.45)
    # scapulae: thin plates in the posterolateral muscle layer of the upper chest
    if s > -70.0:
        scap = body & (depth > t_sat + 3.0) & (depth < t_sat + 7.0) & (sin_phi > 0.35) & (sin_phi < 0.85)
        bone(scap, np.ones_like(scap))
    # vertebra: body (with discs), canal, pedicles/lamina, spinous and transverse processes
    disc = abs(((s - p.disc_phase) % 26.0) - 13.0) > 10.0
    vb = _ellipse(P, 0.0, yv, 19.0, 16.0)
    if disc:
        put(vb <= 1, L["other_soft_tissue"], 90.0)
    else:
        bone(vb <= 1, vb > 0.7)
    arch = (_ellipse(P, 0.0, y_canal, 14.0, 13.0) <= 1) & (Y > yv + 8.0)
    arch |= (np.abs(X) < 4.0) & (Y > y_canal) & (Y < y_canal + 34.0) & (depth > t_sat + 4.0)
    arch |= (np.abs(X) < 34.0) & (np.abs(Y - y_canal + 2.0) < 4.5)
    bone(arch & body, np.ones_like(arch))
    put(_ellipse(P, 0.0, y_canal, 8.5, 8.0) <= 1, L["other_soft_tissue"], 30.0)
    return lab, hu, side
