"""Differentiable (soft) grey-level co-occurrence matrix and its contrast (paper 003 §II-A, eqs. 4–10)."""

import math
from collections.abc import Sequence

import torch
from torch import nn

from ctharmonize.errors import ConfigError

__all__ = ["GLCM_ANGLES", "GLCM_DISTANCES", "SoftGLCM", "glcm_contrast", "glcm_offsets"]

GLCM_DISTANCES = (1, 3, 5, 7)
"""Paper 003 §III-C: spatial offsets P, in pixels."""
GLCM_ANGLES = (0.0, 45.0, 90.0, 135.0)
"""Paper 003 §III-C: angular offsets Q, in degrees."""


def _round_half_away(value: float) -> int:
    """C ``round``: halves away from zero (what skimage uses), not Python's round-half-to-even."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def glcm_offsets(
    distances: Sequence[int] = GLCM_DISTANCES, angles: Sequence[float] = GLCM_ANGLES
) -> list[tuple[int, int]]:
    """(row, col) pixel offsets, distance-major: entry ``i·len(angles) + j`` is (d_i, θ_j).

    ``(dr, dc) = (round(d·sin θ), round(d·cos θ))`` with θ in degrees, and pixel (r, c) is paired
    with (r + dr, c + dc): the convention of ``skimage.feature.graycomatrix`` (0° pairs a pixel
    with the one d columns to its right, 90° with the one d rows below it in array order) and of
    paper 003 eqs. 6–7 (ũ = u + d cos θ along W, ṽ = v + d sin θ along H). Diagonals are rounded
    per axis: 45° with d = 1, 3, 5, 7 gives (1, 1), (2, 2), (4, 4), (5, 5).
    """
    if len(distances) == 0 or len(angles) == 0:
        raise ConfigError(None, "soft GLCM needs at least one distance and one angle")
    offsets = []
    for d in distances:
        if int(d) != d or int(d) < 1:
            raise ConfigError(None, f"GLCM distances must be positive integers (pixels), got {d!r}")
        for a in angles:
            if not math.isfinite(float(a)):
                raise ConfigError(None, f"GLCM angles must be finite (degrees), got {a!r}")
            rad = math.radians(float(a))
            offsets.append(
                (_round_half_away(int(d) * math.sin(rad)), _round_half_away(int(d) * math.cos(rad)))
            )
    return offsets


def glcm_contrast(glcm: torch.Tensor) -> torch.Tensor:
    """GLCM contrast ``Σ_ij (i − j)² P(i, j)`` (paper 003 eq. 9) with i, j bin indices 0 … N−1.

    ``glcm`` (..., N, N), each matrix summing to 1 → (...), in squared bin-index units (the same
    as ``skimage.feature.graycoprops(..., "contrast")``); divide by (N − 1)² for [0, 1].
    """
    n = glcm.shape[-1]
    idx = torch.arange(n, dtype=glcm.dtype, device=glcm.device)
    weights = (idx[:, None] - idx[None, :]) ** 2
    return (glcm * weights).sum(dim=(-2, -1))


class SoftGLCM(nn.Module):
    """Soft GLCM of each image, one matrix per (distance, angle) offset.

    ``forward(x)``: ``x`` (B, 1, H, W) in ``value_range`` (network space [-1, 1] by default) →
    (B, n_offsets, N, N), each matrix summing to 1; offsets are ordered distance-major (see
    :func:`glcm_offsets`). ``contrast(x)`` → (B, n_offsets), the contrast of those matrices in
    squared bin-index units (or in [0, 1] with ``normalize_contrast``), computed without building
    them (see below).

    Binning (paper eq. 8): N bin centres ``b_k = linspace(lo, hi, N)``, the SAME for every offset
    and angle, spacing Δ = (hi − lo)/(N − 1). A pixel value v gets the Gaussian membership
    ``a_k(v) = exp(−(v − b_k)²/(2σ²))`` with σ = ``sigma · Δ`` (``sigma`` is in bin units);
    with ``normalize_memberships`` (default) the memberships are divided by their sum (a softmax over
    bins), so every pixel carries weight 1 and values outside [lo, hi] go to the edge bins. As σ → 0
    on an image quantised to bin centres this is the hard histogram of skimage's ``graycomatrix``.

    Co-occurrence (eqs. 4–5): for offset (dr, dc), ``g(i, j) = Σ_p a_i(x[p]) a_j(x[p + (dr, dc)])``
    over the pixel pairs that both lie inside the image (no padding or wrap-around), computed per
    sample with a batched matrix product, then ``G = g / Σ_ij g``. ``symmetric`` (default) returns
    (G + Gᵀ)/2, skimage's ``symmetric=True`` after ``normed=True``; contrast is the same either way.

    Contrast without the matrices: with normalised memberships, for a pair (p, q)
    ``Σ_ij (i − j)² a_i(p) a_j(q) = var(p) + var(q) + (μ(p) − μ(q))²`` where μ, var are the mean
    and variance of the bin index under the pixel's membership; ``contrast`` averages that over
    the pairs (weighted by the pixels' total memberships when they are not normalised). It equals
    ``glcm_contrast(forward(x))`` and needs O(B·H·W) memory per offset instead of O(B·N²).
    The soft contrast of an image exceeds the hard one by roughly 2·sigma² (bin units).

    Deviations from the authors' code (``glcm_soft_einsum.py``): every angle uses one bin range
    (theirs collapsed the 90°/135° range to [−1, −1]); descriptors are per sample (theirs
    mixed samples across the batch); and a kernel as wide as theirs (σ = 0.5 on [−1, 1]) is
    refused: with kernel width 2σ, ``ConfigError`` when 2σ ≥ (hi − lo)/2. The spec calls σ = 0.5
    "half the intensity range"; taking σ itself as the width would let that value through.
    Computation is in float32 at least (half-precision inputs are promoted). TorchScript-able.

    Args:
        distances: pixel distances (paper: 1, 3, 5, 7).
        angles: angles in degrees (paper: 0, 45, 90, 135).
        n_levels: number of bins N (paper: not given; spec default 64).
        sigma: Gaussian standard deviation in bin units (spec default 0.5).
        value_range: (lo, hi) intensity range spanned by the bin centres.
        symmetric: return (G + Gᵀ)/2.
        normalize_memberships: divide each pixel's memberships by their sum (False: literal eq. 8).
        normalize_contrast: ``contrast`` in units of (N − 1)², i.e. in [0, 1].
    """

    offsets: list[tuple[int, int]]

    def __init__(
        self,
        distances: Sequence[int] = GLCM_DISTANCES,
        angles: Sequence[float] = GLCM_ANGLES,
        n_levels: int = 64,
        sigma: float = 0.5,
        value_range: tuple[float, float] = (-1.0, 1.0),
        symmetric: bool = True,
        normalize_memberships: bool = True,
        normalize_contrast: bool = False,
    ):
        super().__init__()
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ConfigError(
                None, f"soft GLCM value_range must be finite with lo < hi, got {tuple(value_range)}"
            )
        if int(n_levels) != n_levels or int(n_levels) < 2:
            raise ConfigError(None, f"soft GLCM needs an integer n_levels >= 2, got {n_levels!r}")
        n_levels = int(n_levels)
        spacing = (hi - lo) / (n_levels - 1)
        sigma = float(sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise ConfigError(None, f"soft GLCM sigma must be a positive number of bins, got {sigma!r}")
        if 2.0 * sigma * spacing >= (hi - lo) / 2.0:
            raise ConfigError(
                None,
                f"soft GLCM kernel too wide: sigma = {sigma:g} bins = {sigma * spacing:g} intensity units, so its "
                f"width 2·sigma is at least half the range [{lo:g}, {hi:g}] and every pixel falls into every bin "
                f"(the authors' sigma = 0.5 on [-1, 1]); use sigma of the order of one bin "
                f"(< {(hi - lo) / (4.0 * spacing):g} bins, suggested 0.5)",
            )
        self.offsets = glcm_offsets(distances, angles)
        self.distances = [int(d) for d in distances]
        self.angles = [float(a) for a in angles]
        self.n_levels = n_levels
        self.sigma = sigma
        self.sigma_intensity = sigma * spacing
        self.value_range = (lo, hi)
        self.symmetric = bool(symmetric)
        self.normalize_memberships = bool(normalize_memberships)
        self.normalize_contrast = bool(normalize_contrast)
        self.register_buffer(
            "centers", torch.linspace(lo, hi, n_levels, dtype=torch.float64), persistent=False
        )

    @property
    def n_offsets(self) -> int:
        return len(self.offsets)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) → (B, N, H, W) log-memberships ``−(x − b_k)²/(2σ²)``, in float32 or wider."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"soft GLCM expects images of shape (B, 1, H, W), got {list(x.shape)}")
        height, width = x.shape[2], x.shape[3]
        for dr, dc in self.offsets:
            if abs(dr) >= height or abs(dc) >= width:
                raise ValueError(f"GLCM offset ({dr}, {dc}) leaves no pixel pair in a {height}x{width} image")
        dtype = torch.promote_types(x.dtype, torch.float32)
        centers = self.centers.to(dtype=dtype, device=x.device).view(1, -1, 1, 1)
        return -((x.to(dtype) - centers) ** 2) / (2.0 * self.sigma_intensity**2)

    def memberships(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) → (B, N, H, W) soft bin memberships (summing to 1 over N when normalised)."""
        logits = self._logits(x)
        if self.normalize_memberships:
            return torch.softmax(logits, dim=1)
        return torch.exp(logits)

    def _pair_slices(self, dr: int, dc: int, height: int, width: int) -> tuple[int, int, int, int]:
        """Row/col start of the first pixel's crop and the crop size (rows, cols) for offset (dr, dc)."""
        return max(0, -dr), max(0, -dc), height - abs(dr), width - abs(dc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.memberships(x)
        batch, n, height, width = a.shape
        mats: list[torch.Tensor] = []
        for dr, dc in self.offsets:
            r0, c0, rows, cols = self._pair_slices(dr, dc, height, width)
            first = a[:, :, r0 : r0 + rows, c0 : c0 + cols].reshape(batch, n, rows * cols)
            second = a[:, :, r0 + dr : r0 + dr + rows, c0 + dc : c0 + dc + cols].reshape(
                batch, n, rows * cols
            )
            counts = torch.bmm(first, second.transpose(1, 2))  # (B, N, N), per sample
            mats.append(counts / counts.sum(dim=(1, 2), keepdim=True))
        glcm = torch.stack(mats, dim=1)
        if self.symmetric:
            glcm = 0.5 * (glcm + glcm.transpose(-2, -1))
        return glcm

    @torch.jit.export
    def contrast(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) → (B, n_offsets): ``glcm_contrast(self(x))`` without building the matrices."""
        logits = self._logits(x)
        a = torch.softmax(logits, dim=1)  # normalised memberships
        n = a.shape[1]
        idx = torch.arange(n, dtype=a.dtype, device=a.device).view(1, -1, 1, 1)
        if self.normalize_contrast:
            idx = idx / float(n - 1)
        mean = (a * idx).sum(dim=1)  # (B, H, W)
        var = (a * (idx - mean.unsqueeze(1)) ** 2).sum(dim=1)
        weight = (
            torch.ones_like(mean) if self.normalize_memberships else torch.exp(torch.logsumexp(logits, dim=1))
        )
        height, width = mean.shape[1], mean.shape[2]
        out: list[torch.Tensor] = []
        for dr, dc in self.offsets:
            r0, c0, rows, cols = self._pair_slices(dr, dc, height, width)
            m1, m2 = (
                mean[:, r0 : r0 + rows, c0 : c0 + cols],
                mean[:, r0 + dr : r0 + dr + rows, c0 + dc : c0 + dc + cols],
            )
            v1, v2 = (
                var[:, r0 : r0 + rows, c0 : c0 + cols],
                var[:, r0 + dr : r0 + dr + rows, c0 + dc : c0 + dc + cols],
            )
            w = (
                weight[:, r0 : r0 + rows, c0 : c0 + cols]
                * weight[:, r0 + dr : r0 + dr + rows, c0 + dc : c0 + dc + cols]
            )
            pair = v1 + v2 + (m1 - m2) ** 2
            out.append((w * pair).sum(dim=(1, 2)) / w.sum(dim=(1, 2)))
        return torch.stack(out, dim=1)
