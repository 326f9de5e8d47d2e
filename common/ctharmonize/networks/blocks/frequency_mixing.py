"""Frequency-domain mixing Λ of paper 001: one 3D convolution over [Re, Im] of the features' spectrum + MTF features."""

from __future__ import annotations

import torch
from torch import nn

from ctharmonize.networks.blocks.frequency_grid import centered_fft2, centered_ifft2

__all__ = ["LAMBDA_INITS", "FrequencyMixing"]

LAMBDA_INITS = ("identity", "xavier")


class FrequencyMixing(nn.Module):
    """F → Λ → F⁻¹ of paper 001 eq. 3: ``forward(x, omega)`` = ``Re F⁻¹(Λ(F(x), omega))``.

    ``x``: image-domain features (B, C, H, W), real. ``omega``: MTF features (B, C_ω, H, W) on the same
    centred frequency grid (:class:`~ctharmonize.networks.MTFEncoder`). Returns real (B, C, H, W).

    ``F(x)`` = :func:`centered_fft2` (ortho, DC at (H//2, W//2), as the MTF2D map). Λ stacks
    [Re F(x), Im F(x)] on a depth axis → (B, C, 2, H, W), concatenates ``omega`` broadcast to both depth
    slices → (B, C + C_ω, 2, H, W), and applies ``Conv3d(C + C_ω → 2C, k=(2, k, k), pad=(0, k//2, k//2))``
    → (B, 2C, 1, H, W), split into Re′ (first C) and Im′. ``multiplicative=False`` (paper): the new
    spectrum is Re′ + i·Im′. ``multiplicative=True`` (deviation, closer to eq. 2's filter form):
    ``F(x) ⊙ (1 + Re′ + i·Im′)``. F⁻¹ = :func:`centered_ifft2`, then ``.real`` (the mixed spectrum need
    not be Hermitian).

    ``init="identity"`` (default; a deviation from the paper's Xavier init) makes Λ the identity at
    start: the centre tap maps Re → Re′ and Im → Im′ with weight 1 (additive form) or all weights are 0
    (multiplicative form), the ``omega`` weights are 0, so ``forward(x, omega) == x``. ``"xavier"``:
    ``xavier_uniform_`` weights, zero bias (the paper). TorchScript-able.
    """

    def __init__(self, channels: int, mtf_channels: int, kernel_size: int = 3, multiplicative: bool = False,
                 init: str = "identity"):
        super().__init__()
        if channels < 1 or mtf_channels < 0:
            raise ValueError("channels must be >= 1 and mtf_channels >= 0")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        if init not in LAMBDA_INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {', '.join(LAMBDA_INITS)}")
        self.channels = int(channels)
        self.mtf_channels = int(mtf_channels)
        self.multiplicative = bool(multiplicative)
        pad = kernel_size // 2
        self.conv = nn.Conv3d(channels + mtf_channels, 2 * channels, (2, kernel_size, kernel_size),
                              padding=(0, pad, pad))
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "identity") -> None:
        """Re-initialise Λ: ``"identity"`` (see the class docstring) or ``"xavier"``."""
        if init not in LAMBDA_INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {', '.join(LAMBDA_INITS)}")
        with torch.no_grad():
            self.conv.bias.zero_()
            if init == "xavier":
                nn.init.xavier_uniform_(self.conv.weight)
                return
            self.conv.weight.zero_()
            if not self.multiplicative:
                c, centre = self.channels, self.conv.kernel_size[1] // 2
                for i in range(c):
                    self.conv.weight[i, i, 0, centre, centre] = 1.0  # Re → Re′
                    self.conv.weight[c + i, i, 1, centre, centre] = 1.0  # Im → Im′

    @torch.jit.export
    def mix(self, z: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """Λ alone: complex centred spectrum (B, C, H, W) and ``omega`` (B, C_ω, H, W) → complex (B, C, H, W)."""
        if z.shape[1] != self.channels or omega.shape[1] != self.mtf_channels:
            raise ValueError(f"expected {self.channels} spectrum and {self.mtf_channels} MTF-feature channels")
        if z.shape[-2:] != omega.shape[-2:] or z.shape[0] != omega.shape[0]:
            raise ValueError("spectrum and MTF features must share batch size and frequency grid")
        parts = torch.stack([z.real, z.imag], dim=2)  # (B, C, 2, H, W)
        om = omega.to(parts.dtype).unsqueeze(2).expand(-1, -1, 2, -1, -1)
        out = self.conv(torch.cat([parts, om], dim=1)).squeeze(2)  # (B, 2C, H, W)
        re, im = out[:, : self.channels], out[:, self.channels :]
        if self.multiplicative:
            return z * torch.complex(1.0 + re, im)
        return torch.complex(re, im)

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        xf = x if x.dtype == torch.float64 else x.float()  # FFTs in float32 or wider
        z = centered_fft2(xf)
        return centered_ifft2(self.mix(z, omega)).real.to(x.dtype)
