"""MTF measured at the skin–air boundary of a CT volume (paper 001 §1.4, after its reference [31]).

Per axial slice (at most ``max_slices``, evenly spaced; all slices pool into one ESF):

1. **Body**: :func:`ctharmonize.segmentation.body_mask.body_mask` (-400 HU on the smoothed image, table
   cut off by an opening, largest component, holes filled).
2. **Edge line**: the level ``(air + tissue) / 2`` (HU; medians of the air around the body and of the
   tissue 2–6 mm under the skin) of the image smoothed by a 1-pixel Gaussian, traced with
   :func:`skimage.measure.find_contours` in a 3 mm band around the body boundary, resampled every
   0.5 pixel and smoothed along its arc (Gaussian SD ``arc_sigma_mm``). Normals point into the body.
3. **Profiles**: HU along each normal over ±``half_length_mm`` in 0.25-pixel steps (bilinear,
   :func:`scipy.ndimage.map_coordinates`) of the 1-pixel-smoothed image; used to reject and to align.
4. **Rejection**, each profile counted under the first rule it fails (:data:`REJECTION_RULES`):
   ``outside``: a sample leaves the image or the field of view;
   ``curvature``: the edge line's radius of curvature is below ``min_radius_mm``;
   ``air``: beyond ``edge_mm`` on the air side the median is more than 100 HU off the air level, or the
   1 mm running mean strays more than max(100 HU, 6 SD) from it (table, cables, clothing, an arm);
   ``tissue``: beyond ``edge_mm`` on the tissue side the median is outside [-300, 200] HU (not fat or
   soft tissue), or the running mean strays more than max(150 HU, 6 SD) from it (lung, bone, gas);
   ``monotone``: the running mean crosses the profile's own 50 % level more than once;
   ``tilt``: the edge moves more than ``max_tilt_px`` pixels to a neighbouring slice (a skin surface
   oblique to the slice, smeared by the slice thickness).
5. **Alignment**: each profile's 50 % crossing (its own air/tissue levels) starts its edge offset. Every
   raw pixel within ``half_length_mm`` of an accepted edge point is placed at its signed distance from
   that point's edge (raw values, no interpolation blur) and binned in ``bin_px``-pixel bins: the
   oversampled ESF. Then ``refine_iterations`` times, each edge point's offset moves by the least-squares
   shift that fits its pixels within [-2, +1] mm of the edge to the pooled ESF (Gauss–Newton step,
   pooled over neighbours with Gaussian weights of SD ``arc_sigma_mm``), and the ESF is binned again.
6. **Tail reconstruction**: the tissue ("right") side holds anatomy (skin over fat, muscle, ribs) that is
   not part of the blur, while the air side is uniform. So beyond one half width at half maximum of the
   LSF peak the tissue-side LSF is the air-side LSF mirrored about the edge centre (the LSF peak;
   raised-cosine blend over another half width), which assumes a symmetric in-plane PSF (true of FBP
   kernels). Beyond ``tail_mm`` (default 8 half widths, 4 mm to half the profile length) the LSF is set
   to zero (flat ESF plateaus; raised cosine over 1 mm): only noise is out there.
7. **LSF → MTF**: LSF = dESF/dx (central differences), times a Tukey window (α = 0.5) over the profile
   length, zero padded, |FFT|, normalised to 1 at DC.

MTF50 / MTF10: first frequencies (lp/cm) where the MTF falls below 0.5 / 0.1. The 1-D MTF is the
presampled MTF (bins finer than a pixel), so it extends past the Nyquist frequency (reported to twice
it). :meth:`EdgeMTF.mtf2d` is the 64 × 64 map of :mod:`ctharmonize.simulation.mtf2d`, built
rotationally symmetric from the 1-D curve: it assumes an isotropic in-plane MTF.

On images with nonlinear processing (edge enhancement, iterative-like denoising) the result is the
response to a ~1000 HU edge, not an MTF that also holds for low-contrast detail (docs/physics.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.signal.windows import tukey
from scipy.spatial import cKDTree
from skimage.measure import find_contours

from ctharmonize.errors import InputError
from ctharmonize.physics.volume_input import measured_volume
from ctharmonize.simulation.kernels import mtf50_of
from ctharmonize.simulation.mtf2d import MTF2D_SIZE, mtf2d_from_profile

__all__ = ["EdgeMTF", "REJECTION_RULES", "mtf_crossing", "skin_air_mtf"]

#: profile rejection rules, in the order they are checked (see the module docstring)
REJECTION_RULES = ("outside", "curvature", "air", "tissue", "monotone", "tilt")

_AIR_OFFSET_HU = 100.0
_AIR_STRAY_HU = 100.0
_TISSUE_RANGE_HU = (-300.0, 200.0)
_TISSUE_STRAY_HU = 150.0
_BAND_MM = 3.0
_FIT_RANGE_MM = (-2.0, 1.0)


def mtf_crossing(freqs: np.ndarray, mtf: np.ndarray, level: float) -> float:
    """First frequency where a sampled MTF falls below ``level`` (linear interpolation); NaN if never."""
    if level == 0.5:
        return mtf50_of(freqs, mtf)
    f, m = np.asarray(freqs, float), np.asarray(mtf, float)
    below = np.nonzero(m < level)[0]
    below = below[below > 0]
    if below.size == 0:
        return float("nan")
    i = below[0]
    return float(f[i - 1] + (m[i - 1] - level) * (f[i] - f[i - 1]) / (m[i - 1] - m[i]))


@dataclass
class EdgeMTF:
    """Result of :func:`skin_air_mtf`. Frequencies in lp/cm, distances in mm, ESF in HU.

    Attributes:
        frequencies: 1-D frequencies (lp/cm) from 0 to twice the Nyquist frequency.
        mtf: the presampled MTF at ``frequencies`` (1 at DC).
        mtf50, mtf10: first frequencies (lp/cm) where the MTF falls below 0.5 and 0.1.
        distance: signed distance from the edge centre (mm, tissue positive) of the ESF bins.
        esf: the measured, binned ESF (HU); lsf: the reconstructed, windowed LSF (HU/mm).
        pixel_spacing: (row, column) spacing in mm.
        air_hu, tissue_hu: the ESF plateaus beyond ``tail_mm`` (HU).
        profiles: edge points examined; accepted: edge points used; rejected: count per rule.
        slices: slice indices measured; tail_mm, mirror_mm: the reconstruction distances used (mm).
    """

    frequencies: np.ndarray
    mtf: np.ndarray
    mtf50: float
    mtf10: float
    distance: np.ndarray
    esf: np.ndarray
    lsf: np.ndarray
    pixel_spacing: tuple[float, float]
    air_hu: float
    tissue_hu: float
    profiles: int
    accepted: int
    rejected: dict[str, int] = field(default_factory=dict)
    slices: list[int] = field(default_factory=list)
    tail_mm: float = float("nan")
    mirror_mm: float = float("nan")

    @property
    def nyquist(self) -> float:
        """Nyquist frequency (lp/cm) of the coarser in-plane axis."""
        return 10.0 / (2.0 * max(self.pixel_spacing))

    def mtf_at(self, f_lp_cm: np.ndarray | float) -> np.ndarray:
        """The measured MTF at frequencies in lp/cm (linear interpolation; last value held beyond)."""
        return np.interp(np.abs(np.asarray(f_lp_cm, dtype=float)), self.frequencies, self.mtf)

    def mtf_samples(self, n: int = MTF2D_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Paper 001's "64 frequency samples": (``linspace(0, Nyquist, n)`` lp/cm, MTF there)."""
        f = np.linspace(0.0, self.nyquist, int(n))
        return f, self.mtf_at(f)

    def mtf2d(self, size: int = MTF2D_SIZE) -> np.ndarray:
        """(size, size) float32 rotationally symmetric 2-D MTF in the layout of :func:`mtf2d_from_profile`."""
        return mtf2d_from_profile(self.frequencies, self.mtf, self.pixel_spacing, size)

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars and curves (the MTF curve, its 64 samples, ESF and LSF; not the 2-D map)."""
        f64, m64 = self.mtf_samples()
        return {
            "mtf50_lp_cm": self.mtf50, "mtf10_lp_cm": self.mtf10, "nyquist_lp_cm": self.nyquist,
            "pixel_spacing_mm": list(self.pixel_spacing), "air_hu": self.air_hu, "tissue_hu": self.tissue_hu,
            "profiles": self.profiles, "accepted": self.accepted, "rejected": dict(self.rejected),
            "slices": list(self.slices), "tail_mm": self.tail_mm, "mirror_mm": self.mirror_mm,
            "curve": {"frequency_lp_cm": self.frequencies.tolist(), "mtf": self.mtf.tolist()},
            "samples_64": {"frequency_lp_cm": f64.tolist(), "mtf": m64.tolist()},
            "esf": {"distance_mm": self.distance.tolist(), "hu": self.esf.tolist(), "lsf": self.lsf.tolist()},
        }


@dataclass
class _Edge:
    """Accepted edge points of one slice: (x, y) mm, inward normals, tangents, offsets (mm), spacing (mm)."""

    points: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    offsets: np.ndarray
    spacing_mm: float


@dataclass
class _SliceSamples:
    """Raw pixels of one slice near its edge: distance from the edge line (mm), HU, edge point index."""

    edge: _Edge
    distance: np.ndarray
    values: np.ndarray
    point: np.ndarray
    neighbours: Any  # sparse (points x points) Gaussian weights of the in-plane distance


@dataclass
class _Context:
    """What every slice's measurement shares."""

    spacing_yx: tuple[float, float]
    air: float
    tissue: float
    noise_air: float
    noise_tissue: float
    half: float
    edge_mm: float
    arc_sigma: float
    min_radius: float
    max_tilt_px: float


def _resample(xy: np.ndarray, step: float, closed: bool) -> np.ndarray:
    """Points every ``step`` mm along a polyline (closed: evenly around the loop)."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    n = max(int(round(s[-1] / step)), 4)
    t = np.arange(n) * (s[-1] / n) if closed else np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, xy[:, 0]), np.interp(t, s, xy[:, 1])], axis=1)


def _sample(img: np.ndarray, pts_mm: np.ndarray, spacing_yx: tuple[float, float], order: int,
            cval: float = np.nan) -> np.ndarray:
    """Values of ``img`` (Y, X) at points (..., 2) given as (x, y) in mm."""
    coords = np.stack([pts_mm[..., 1] / spacing_yx[0], pts_mm[..., 0] / spacing_yx[1]]).reshape(2, -1)
    return ndimage.map_coordinates(img, coords, order=order, mode="constant", cval=cval).reshape(pts_mm.shape[:-1])


def _crossings(p: np.ndarray, level: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(number of crossings of ``level``, position (mm) of the crossing nearest s = 0) of each profile."""
    d = p - level[:, None]
    change = (d[:, 1:] > 0) != (d[:, :-1] > 0)
    count = change.sum(axis=1)
    j = np.argmin(np.where(change, np.abs(0.5 * (s[1:] + s[:-1]))[None, :], np.inf), axis=1)
    rows = np.arange(p.shape[0])
    d0, d1 = d[rows, j], d[rows, j + 1]
    frac = np.clip(np.where(d1 != d0, d0 / np.where(d1 != d0, d0 - d1, 1.0), 0.5), 0.0, 1.0)
    pos = s[j] + frac * (s[1] - s[0])
    pos[count == 0] = np.nan
    return count, pos


def _edge_lines(sm: np.ndarray, body: np.ndarray, ctx: _Context, step: float) -> list[tuple[np.ndarray, bool]]:
    """Smoothed skin–air edge lines of one slice: (points (N, 2) as (x, y) mm, closed)."""
    sy, sx = ctx.spacing_yx
    inside = ndimage.distance_transform_edt(body, sampling=(sy, sx))
    outside = ndimage.distance_transform_edt(~body, sampling=(sy, sx))
    band = (inside <= _BAND_MM) & (outside <= _BAND_MM)
    work = np.where(band, sm, np.where(body, ctx.tissue, ctx.air))
    work[0, :] = work[-1, :] = work[:, 0] = work[:, -1] = ctx.air  # contours close at the image border
    lines = []
    for c in find_contours(work, 0.5 * (ctx.air + ctx.tissue)):
        xy = np.stack([c[:, 1] * sx, c[:, 0] * sy], axis=1)
        if np.hypot(*np.diff(xy, axis=0).T).sum() < 20.0:
            continue
        closed = bool(np.allclose(c[0], c[-1]))
        pts = ndimage.gaussian_filter1d(_resample(xy, step, closed), ctx.arc_sigma / step, axis=0,
                                        mode="wrap" if closed else "nearest")
        lines.append((pts, closed))
    return lines


def _first_failure(rules: list[tuple[str, np.ndarray]], rejected: dict[str, int]) -> np.ndarray:
    """Bool 'rejected' per profile; each counted under the first rule that it fails."""
    bad = np.zeros(rules[0][1].shape, dtype=bool)
    for rule, cond in rules:
        new = cond & ~bad
        rejected[rule] += int(new.sum())
        bad |= new
    return bad


def _measure_slice(z: int, sm: np.ndarray, body: np.ndarray, fov: np.ndarray, ctx: _Context,
                   rejected: dict[str, int]) -> tuple[_Edge | None, int]:
    """Edge points of slice ``z`` that pass the rejection rules, and how many were examined."""
    px = min(ctx.spacing_yx)
    step, ds = 0.5 * px, 0.25 * px
    s = np.arange(-ctx.half, ctx.half + 0.5 * ds, ds)
    side_air, side_tissue = s <= -ctx.edge_mm, s >= ctx.edge_mm
    run = max(int(round(1.0 / ds)), 1)
    total, kept = 0, []
    for pts, closed in _edge_lines(sm[z], body[z], ctx, step):
        total += pts.shape[0]
        mode = "wrap" if closed else "nearest"
        d1 = ndimage.correlate1d(pts, [-0.5, 0.0, 0.5], axis=0, mode=mode) / step
        d2 = ndimage.correlate1d(pts, [1.0, -2.0, 1.0], axis=0, mode=mode) / step**2
        speed = np.maximum(np.hypot(d1[:, 0], d1[:, 1]), 1e-12)
        tangent = d1 / speed[:, None]
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        if _sample(body[z].astype(np.float32), pts + 1.5 * normal, ctx.spacing_yx, 0, 0.0).mean() < 0.5:
            normal = -normal
        curvature = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / speed**3
        lines = pts[:, None, :] + s[None, :, None] * normal[:, None, :]
        prof = _sample(sm[z], lines, ctx.spacing_yx, 1)
        in_fov = _sample(fov[z].astype(np.float32), lines, ctx.spacing_yx, 0, 0.0)
        outside = ~np.isfinite(prof).all(axis=1) | (in_fov < 0.5).any(axis=1)
        prof = np.nan_to_num(prof, nan=ctx.air)
        rm = ndimage.uniform_filter1d(prof, run, axis=1, mode="nearest")
        a = np.median(prof[:, side_air], axis=1)
        b = np.median(prof[:, side_tissue], axis=1)
        air_stray = np.abs(rm[:, side_air] - a[:, None]).max(axis=1)
        tissue_stray = np.abs(rm[:, side_tissue] - b[:, None]).max(axis=1)
        level = 0.5 * (a + b)
        count, pos = _crossings(rm, level, s)
        rules = [
            ("outside", outside),
            ("curvature", curvature > 1.0 / ctx.min_radius),
            ("air", (np.abs(a - ctx.air) > _AIR_OFFSET_HU) | (air_stray > max(_AIR_STRAY_HU, 6 * ctx.noise_air))),
            ("tissue", (b < _TISSUE_RANGE_HU[0]) | (b > _TISSUE_RANGE_HU[1])
             | (tissue_stray > max(_TISSUE_STRAY_HU, 6 * ctx.noise_tissue))),
            ("monotone", (count != 1) | ~np.isfinite(pos)),
        ]
        shifts = []
        for zn in (z - 1, z + 1):
            if 0 <= zn < sm.shape[0]:
                pn = np.nan_to_num(_sample(sm[zn], lines, ctx.spacing_yx, 1), nan=ctx.air)
                shifts.append(np.abs(_crossings(ndimage.uniform_filter1d(pn, run, axis=1, mode="nearest"),
                                                level, s)[1] - pos))
        if shifts:
            shift = np.stack(shifts).max(axis=0)
            rules.append(("tilt", ~np.isfinite(shift) | (shift > ctx.max_tilt_px * px)))
        ok = ~_first_failure(rules, rejected)
        if ok.any():
            kept.append(_Edge(pts[ok], normal[ok], tangent[ok], pos[ok], step))
    if not kept:
        return None, total
    return _Edge(*(np.concatenate([getattr(e, f) for e in kept]) for f in ("points", "normals", "tangents",
                                                                              "offsets")), step), total


def _pixel_samples(hu: np.ndarray, body: np.ndarray, edge: _Edge, spacing_yx: tuple[float, float],
                   half: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance mm along the normal of the nearest edge point, HU, that point's index) of the raw
    pixels within about ``half`` mm of the accepted edge points."""
    sy, sx = spacing_yx
    inside = ndimage.distance_transform_edt(body, sampling=(sy, sx))
    outside = ndimage.distance_transform_edt(~body, sampling=(sy, sx))
    rows, cols = np.nonzero((inside <= half + _BAND_MM) & (outside <= half + _BAND_MM))
    xy = np.stack([cols * sx, rows * sy], axis=1)
    gap, k = cKDTree(edge.points).query(xy, distance_upper_bound=half + _BAND_MM)
    found = np.isfinite(gap)
    xy, k, rows, cols = xy[found], k[found], rows[found], cols[found]
    rel = xy - edge.points[k]
    d = np.einsum("ij,ij->i", rel, edge.normals[k])
    t = np.einsum("ij,ij->i", rel, edge.tangents[k])
    use = (np.abs(t) <= edge.spacing_mm) & (np.abs(d - edge.offsets[k]) <= half + 1.0)
    return d[use], hu[rows[use], cols[use]].astype(np.float64), k[use]


def _bin_esf(d: np.ndarray, v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean HU per distance bin; empty bins interpolated."""
    centres = 0.5 * (edges[:-1] + edges[1:])
    inside = (d >= edges[0]) & (d < edges[-1])
    idx = np.digitize(d[inside], edges) - 1
    counts = np.bincount(idx, minlength=centres.size)
    sums = np.bincount(idx, weights=v[inside], minlength=centres.size)
    ok = counts > 0
    if ok.sum() < 2:
        raise InputError(None, "too few skin-air edge samples to form an edge spread function")
    return np.interp(centres, centres[ok], sums[ok] / counts[ok])


def _refine_offsets(samples: list[_SliceSamples], centres: np.ndarray, esf: np.ndarray, bin_mm: float) -> float:
    """Move every edge point's offset by the Gauss–Newton shift fitting its pixels to the pooled ESF
    (pooled over its neighbours). Returns the RMS shift (mm)."""
    smooth = ndimage.gaussian_filter1d(esf, 1.0)
    slope = np.gradient(smooth, bin_mm)
    moved = []
    for sl in samples:
        d = sl.distance - sl.edge.offsets[sl.point]
        use = (d >= _FIT_RANGE_MM[0]) & (d <= _FIT_RANGE_MM[1])
        g = np.interp(d[use], centres, slope)
        r = sl.values[use] - np.interp(d[use], centres, smooth)
        n = sl.edge.points.shape[0]
        num = sl.neighbours @ np.bincount(sl.point[use], weights=-r * g, minlength=n)
        den = sl.neighbours @ np.bincount(sl.point[use], weights=g * g, minlength=n)
        shift = np.clip(np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0), -0.5, 0.5)
        sl.edge.offsets += shift
        moved.append(shift)
    return float(np.sqrt(np.mean(np.concatenate(moved) ** 2)))


def _reconstruct_lsf(distance: np.ndarray, esf: np.ndarray, bin_mm: float, half: float,
                     tail_mm: float | None) -> tuple[np.ndarray, float, float, float]:
    """LSF of the binned ESF with the tissue side mirrored from the air side (module docstring, step 6).

    Returns (windowed LSF in HU/mm at ``distance``, edge centre mm, mirror distance mm, tail distance mm).
    """
    raw = np.gradient(esf, bin_mm)
    smooth = ndimage.gaussian_filter1d(raw, 1.0)
    near = np.flatnonzero(np.abs(distance) <= 1.5)
    i = int(near[np.argmax(smooth[near])])
    centre = float(distance[i])
    if 0 < i < raw.size - 1:
        a, b, c = smooth[i - 1], smooth[i], smooth[i + 1]
        if a - 2 * b + c < 0:
            centre += float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5)) * bin_mm
    left = np.flatnonzero(smooth[:i] < 0.5 * smooth[i])
    mirror = max(float(centre - distance[left[-1]]) if left.size else 0.0, 2.0 * bin_mm)
    tail = float(np.clip(8.0 * mirror, 4.0, 0.5 * half)) if tail_mm is None else float(min(tail_mm, half - 1.0))
    rel = distance - centre
    reflected = np.interp(centre - rel, distance, raw)
    w = 0.5 * (1.0 + np.cos(np.pi * np.clip((rel - mirror) / mirror, 0.0, 1.0)))
    lsf = w * raw + (1.0 - w) * reflected
    lsf *= 0.5 * (1.0 + np.cos(np.pi * np.clip(np.abs(rel) - (tail - 0.5), 0.0, 1.0)))
    return lsf * tukey(lsf.size, alpha=0.5), centre, mirror, tail


def skin_air_mtf(
    hu: np.ndarray,
    spacing: Sequence[float],
    *,
    fov_mask: np.ndarray | None = None,
    body: np.ndarray | None = None,
    max_slices: int | None = 32,
    half_length_mm: float = 10.0,
    bin_px: float = 0.1,
    edge_mm: float = 3.0,
    arc_sigma_mm: float = 2.0,
    min_radius_mm: float = 10.0,
    max_tilt_px: float = 0.5,
    tail_mm: float | None = None,
    refine_iterations: int = 3,
    min_profiles: int = 100,
) -> EdgeMTF:
    """Measure the MTF at the skin–air boundary of a CT volume (method: module docstring).

    Args:
        hu: volume (Z, Y, X) or slice (Y, X) in HU.
        spacing: (sx, sy[, sz]) in mm, sx along the last axis.
        fov_mask: bool, True inside the reconstructed field of view (profiles leaving it are rejected).
        body: bool body mask; default :func:`~ctharmonize.segmentation.body_mask.body_mask`.
        max_slices: measure at most this many slices, evenly spaced (None: all).
        half_length_mm: profile half length (mm) on each side of the edge.
        bin_px: ESF bin width in pixels (oversampling).
        edge_mm: distance (mm) from the edge beyond which the plateau checks apply.
        arc_sigma_mm: smoothing (mm, Gaussian SD) of the edge line and pooling of the alignment fit.
        min_radius_mm: reject edge points whose radius of curvature is smaller (mm).
        max_tilt_px: reject edge points that move more than this (pixels) to a neighbouring slice.
        tail_mm: distance (mm) beyond which the LSF is zero; None: 8 half widths, 4 mm to half_length/2.
        refine_iterations: alignment passes fitting each edge point's pixels to the pooled ESF (0: none).
        min_profiles: fewer accepted edge points is an :class:`~ctharmonize.errors.InputError`.

    Returns:
        :class:`EdgeMTF`.
    """
    volume = measured_volume(hu, spacing, fov_mask, body)
    a, fov, body = volume.hu, volume.fov, volume.body
    sx, sy, _ = volume.spacing
    spacing_yx = (sy, sx)
    if not body.any():
        raise InputError(None, "no body found (nothing above -400 HU): cannot measure the skin-air MTF")
    sm = ndimage.gaussian_filter(np.where(fov, np.clip(a, -1100.0, 500.0), -1024.0), sigma=(0, 1, 1))
    zs = [z for z in range(a.shape[0]) if body[z].any()]
    if max_slices is not None and len(zs) > int(max_slices):
        zs = [zs[int(i)] for i in np.round(np.linspace(0, len(zs) - 1, int(max_slices)))]
    inside = np.stack([ndimage.distance_transform_edt(body[z], sampling=spacing_yx) for z in zs])
    outside = np.stack([ndimage.distance_transform_edt(~body[z], sampling=spacing_yx) for z in zs])
    air_px = sm[zs][(outside > _BAND_MM) & fov[zs]]
    tissue_px = sm[zs][(inside >= 2.0) & (inside <= 6.0)]
    if air_px.size < 100 or tissue_px.size < 100:
        raise InputError(None, "no air around the body inside the field of view: cannot measure the skin-air MTF")
    air, tissue = float(np.median(air_px)), float(np.median(tissue_px))
    ctx = _Context(spacing_yx, air, tissue, float(np.std(air_px)),
                   float(1.4826 * np.median(np.abs(tissue_px - tissue))), float(half_length_mm), float(edge_mm),
                   float(arc_sigma_mm), float(min_radius_mm), float(max_tilt_px))
    rejected = dict.fromkeys(REJECTION_RULES, 0)
    samples: list[_SliceSamples] = []
    total = accepted = 0
    for z in zs:
        edge, n = _measure_slice(z, sm, body, fov, ctx, rejected)
        total += n
        if edge is None:
            continue
        accepted += edge.points.shape[0]
        d, v, k = _pixel_samples(a[z], body[z], edge, spacing_yx, ctx.half)
        tree = cKDTree(edge.points)
        weights = tree.sparse_distance_matrix(tree, 3.0 * ctx.arc_sigma, output_type="coo_matrix").tocsr()
        weights.data = np.exp(-0.5 * (weights.data / ctx.arc_sigma) ** 2)
        weights.setdiag(1.0)
        samples.append(_SliceSamples(edge, d, v, k, weights))
    if accepted < int(min_profiles):
        detail = ", ".join(f"{rule} {count}" for rule, count in rejected.items() if count)
        raise InputError(None, f"only {accepted} usable skin-air edge profiles of {total} (need {min_profiles}; "
                               f"rejected: {detail or 'none'})")
    bin_mm = float(bin_px) * min(sx, sy)
    nb = int(np.ceil(ctx.half / bin_mm))
    edges = (np.arange(-nb, nb + 1) - 0.5) * bin_mm
    centres = 0.5 * (edges[:-1] + edges[1:])
    values = np.concatenate([sl.values for sl in samples])

    def pooled() -> np.ndarray:
        return _bin_esf(np.concatenate([sl.distance - sl.edge.offsets[sl.point] for sl in samples]), values, edges)

    esf = pooled()
    for _ in range(int(refine_iterations)):
        moved = _refine_offsets(samples, centres, esf, bin_mm)
        esf = pooled()
        if moved < 1e-3:
            break
    lsf, centre, mirror, tail = _reconstruct_lsf(centres, esf, bin_mm, ctx.half, tail_mm)
    far = np.abs(centres - centre) >= tail
    n_fft = 1 << int(np.ceil(np.log2(max(16 * lsf.size, 4096))))
    spectrum = np.abs(np.fft.rfft(lsf, n=n_fft))
    freqs = np.fft.rfftfreq(n_fft, d=bin_mm) * 10.0
    keep = freqs <= 2.0 * 10.0 / (2.0 * max(sx, sy)) + 1e-9
    freqs, mtf = freqs[keep], spectrum[keep] / spectrum[0]
    return EdgeMTF(
        frequencies=freqs, mtf=mtf, mtf50=mtf_crossing(freqs, mtf, 0.5), mtf10=mtf_crossing(freqs, mtf, 0.1),
        distance=centres - centre, esf=esf, lsf=lsf, pixel_spacing=spacing_yx,
        air_hu=float(esf[far & (centres < centre)].mean()), tissue_hu=float(esf[far & (centres > centre)].mean()),
        profiles=total, accepted=accepted, rejected=rejected, slices=zs, tail_mm=tail, mirror_mm=mirror,
    )
