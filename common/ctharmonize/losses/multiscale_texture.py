"""Multi-scale soft-GLCM texture loss with self-attention aggregation (paper 003 §II, eqs. 9–14)."""

import math
from collections.abc import Sequence

import torch
from torch import nn

from ctharmonize.errors import ConfigError
from ctharmonize.losses.soft_glcm import GLCM_ANGLES, GLCM_DISTANCES, SoftGLCM

__all__ = ["TEXTURE_AGGREGATIONS", "MultiScaleTextureLoss"]

TEXTURE_AGGREGATIONS = ("bounded", "paper")


class MultiScaleTextureLoss(nn.Module):
    """``weight · mean_b reduce(ΔT'_b)``, ΔT = |contrast(x) − contrast(x_rec)| on a distance × angle grid.

    ``forward(x, x_rec)``: the real image and its cycle reconstruction G(G(x, s_trg), E(x)), both
    (B, 1, H, W) in ``value_range`` (network space [-1, 1]) → scalar. ``texture_difference``
    gives ΔT (B, p, q) (rows = distances, columns = angles, soft-GLCM contrast in squared bin
    units, see :class:`~ctharmonize.losses.soft_glcm.SoftGLCM`); ``aggregate(ΔT)`` gives the
    scalar and ``plain_aggregate(ΔT)`` the attention-free one (``reduction`` of ΔT, batch mean),
    worth logging next to ``gamma``. Samples never mix: the descriptors and the attention are
    per sample, and only the final batch mean combines them.

    Aggregation (SAGAN self-attention over the 16 grid cells, ΔT as a 1-channel p×q map):
    queries Q = Conv1×1(ΔT), keys K = Conv1×1(ΔT) (``attention_channels`` each, 1 as in the
    authors' code), ``A = softmax_keys(QᵀK)`` (B, pq, pq); γ is a scalar initialised to 0.

    - ``"paper"``: eqs. 12–14 as published, V = Conv1×1(ΔT) (1→1, with bias) and
      ``ΔT' = γ·A·V + ΔT``. This is unbounded below in the attention parameters: with γ·bias < 0
      the loss goes to −∞, and with γ·w_V < 0 a cell's weight 1 + γ·w_V·Σ_i A_ij can be negative,
      rewarding the generator for a LARGER texture error there. The authors' code hides the
      sign with ``abs(mean_batch(...))``; neither that nor its batch min–max normalisation of ΔT
      (which couples samples) is reproduced.
    - ``"bounded"`` (default): V = ΔT and the gain |γ|, ``ΔT' = ΔT + |γ|·A·ΔT``. As A ≥ 0 and
      ΔT ≥ 0, ``sum(ΔT') = sum(ΔT) + |γ|·Σ_j c_j ΔT_j`` with column sums c_j ≥ 0, so the loss
      never drops below the plain aggregate (and is 0 exactly when ΔT = 0); with A held fixed each
      cell's weight is 1 + |γ|·c_j ≥ 1. ``value`` is an ``nn.Identity`` (no value conv). Minimising
      over γ drives it towards 0 (the plain sum); the attention can only emphasise cells, never
      flip their sign.

    With γ = 0 both modes equal the plain aggregate. The attention parameters (``gamma``,
    ``query``, ``key``, ``value``) are learnable: as in the paper, the trainer puts
    ``loss.parameters()`` into the GENERATOR's optimiser (they are trained with G, in both G
    steps), not the discriminator's. The paper's weight is 1 (``L = L_baseline + L_txt``).

    Args:
        weight: loss weight (paper: 1).
        mode: ``"bounded"`` or ``"paper"``.
        reduction: over the grid cells, ``"sum"`` (paper eq. 12) or ``"mean"``.
        attention_channels: channels of the query/key projections.
        distances, angles, n_levels, sigma, value_range, symmetric, normalize_contrast: passed
            to :class:`SoftGLCM` (sigma in bin units).
    """

    def __init__(
        self,
        weight: float = 1.0,
        mode: str = "bounded",
        reduction: str = "sum",
        attention_channels: int = 1,
        distances: Sequence[int] = GLCM_DISTANCES,
        angles: Sequence[float] = GLCM_ANGLES,
        n_levels: int = 64,
        sigma: float = 0.5,
        value_range: tuple[float, float] = (-1.0, 1.0),
        symmetric: bool = True,
        normalize_contrast: bool = False,
    ):
        super().__init__()
        if mode not in TEXTURE_AGGREGATIONS:
            raise ConfigError(
                None,
                f"unknown texture aggregation {mode!r}; expected one of {', '.join(TEXTURE_AGGREGATIONS)}",
            )
        if reduction not in ("sum", "mean"):
            raise ConfigError(None, f"unknown texture reduction {reduction!r}; expected 'sum' or 'mean'")
        if int(attention_channels) != attention_channels or int(attention_channels) < 1:
            raise ConfigError(
                None, f"attention_channels must be a positive integer, got {attention_channels!r}"
            )
        if not math.isfinite(float(weight)):
            raise ConfigError(None, f"texture loss weight must be finite, got {weight!r}")
        self.weight = float(weight)
        self.mode = mode
        self.reduction = reduction
        self.glcm = SoftGLCM(
            distances=distances,
            angles=angles,
            n_levels=n_levels,
            sigma=sigma,
            value_range=value_range,
            symmetric=symmetric,
            normalize_contrast=normalize_contrast,
        )
        self.grid = (len(self.glcm.distances), len(self.glcm.angles))
        self.query = nn.Conv2d(1, int(attention_channels), kernel_size=1)
        self.key = nn.Conv2d(1, int(attention_channels), kernel_size=1)
        self.value = nn.Conv2d(1, 1, kernel_size=1) if mode == "paper" else nn.Identity()
        self.gamma = nn.Parameter(torch.zeros(()))

    def texture_difference(self, x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) twice → ΔT = |T(x) − T(x_rec)| (B, p, q), p distances × q angles (eq. 11)."""
        if x.shape != x_rec.shape:
            raise ValueError(f"x {list(x.shape)} and x_rec {list(x_rec.shape)} must have one shape")
        t_real = self.glcm.contrast(x)
        t_rec = self.glcm.contrast(x_rec)
        return (t_real - t_rec).abs().reshape(x.shape[0], self.grid[0], self.grid[1])

    def _reduce(self, cells: torch.Tensor) -> torch.Tensor:
        """(B, pq) → (B,)."""
        if self.reduction == "sum":
            return cells.sum(dim=1)
        return cells.mean(dim=1)

    @torch.jit.export
    def plain_aggregate(self, delta: torch.Tensor) -> torch.Tensor:
        """ΔT (B, p, q) → scalar ``weight · mean_b reduce(ΔT_b)`` (no attention)."""
        return self.weight * self._reduce(delta.reshape(delta.shape[0], -1)).mean()

    @torch.jit.export
    def attend(self, delta: torch.Tensor) -> torch.Tensor:
        """ΔT (B, p, q) → ΔT' (B, p, q), the attention layer's output (eq. 13 or its bounded form)."""
        batch, rows, cols = delta.shape
        dt = delta.unsqueeze(1).to(self.gamma.dtype)  # (B, 1, p, q)
        q = self.query(dt).reshape(batch, -1, rows * cols)  # (B, c, pq)
        k = self.key(dt).reshape(batch, -1, rows * cols)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (B, pq, pq), rows sum to 1
        if self.mode == "paper":
            v = self.value(dt).reshape(batch, rows * cols, 1)
            gain = self.gamma
        else:
            v = dt.reshape(batch, rows * cols, 1)
            gain = self.gamma.abs()
        out = torch.bmm(attn, v).reshape(batch, rows, cols)  # out_i = Σ_j A_ij v_j
        return gain * out + dt.reshape(batch, rows, cols)

    @torch.jit.export
    def aggregate(self, delta: torch.Tensor) -> torch.Tensor:
        """ΔT (B, p, q) → scalar ``weight · mean_b reduce(ΔT'_b)`` (eq. 12)."""
        out = self.attend(delta)
        return self.weight * self._reduce(out.reshape(out.shape[0], -1)).mean()

    def forward(self, x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
        return self.aggregate(self.texture_difference(x, x_rec))
