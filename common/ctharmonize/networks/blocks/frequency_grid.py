"""Centred (fftshift) 2D Fourier grids: the FFT pair of paper 001's Λ branch and DC-anchored resampling.

Convention used by every frequency-domain piece of the MTF-conditioned harmonizer (paper 001): an
(H, W) spectrum is stored fftshift-ed, DC at index (H // 2, W // 2); index ``j`` is the frequency
``(j - H // 2) / (H · spacing)``, so every grid of the same image covers [-Nyquist, Nyquist) whatever
its size. The MTF2D maps (64 × 64, DC at (32, 32)) follow it as well
(:mod:`ctharmonize.simulation.mtf2d`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["centered_fft2", "centered_ifft2", "resample_centered"]


def centered_fft2(x: torch.Tensor) -> torch.Tensor:
    """Real (B, C, H, W) → complex (B, C, H, W): ``fftshift(fft2(x, norm="ortho"))``, DC at (H//2, W//2).

    ``norm="ortho"`` keeps Parseval (‖X‖₂ = ‖x‖₂), so the spectrum's scale does not depend on the size.
    """
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def centered_ifft2(z: torch.Tensor) -> torch.Tensor:
    """Complex centred spectrum (B, C, H, W) → complex image ``ifft2(ifftshift(z), norm="ortho")``.

    The exact inverse of :func:`centered_fft2` (also for odd sizes); take ``.real`` for the image.
    """
    return torch.fft.ifft2(torch.fft.ifftshift(z, dim=(-2, -1)), norm="ortho")


def _axis_coords(src: int, dst: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # destination index j is the frequency (j - dst//2)/dst (in units of the sampling rate); on the source grid
    # that is index src//2 + (j - dst//2)·src/dst; grid_sample (align_corners=True) wants it in [-1, 1]
    j = torch.arange(dst, device=device, dtype=dtype)
    k = float(src // 2) + (j - float(dst // 2)) * (float(src) / float(dst))
    if src == 1:
        return torch.zeros_like(k)
    return 2.0 * k / float(src - 1) - 1.0


def resample_centered(x: torch.Tensor, size: list[int], mode: str = "bilinear") -> torch.Tensor:
    """Resample centred frequency maps (B, C, h, w) onto the centred grid of ``size`` = [H, W].

    Both grids span the same frequency band [-Nyquist, Nyquist) (the maps are of one image at one pixel
    spacing), so DC goes to DC exactly: destination index ``j`` reads source position
    ``h//2 + (j - H//2)·h/H`` (linear interpolation, the border value beyond the last sample). When h is
    a multiple of H this is plain sub-sampling ``x[..., ::h//H, ::w//W]`` (shifted to keep DC); same size
    returns ``x``. TorchScript-able.
    """
    if len(size) != 2:
        raise ValueError("size must be [H, W]")
    h, w = x.shape[-2], x.shape[-1]
    if h == size[0] and w == size[1]:
        return x
    if h % size[0] == 0 and w % size[1] == 0:  # integer factor: exact DC-anchored sub-sampling
        ry, rx = h // size[0], w // size[1]
        y0, x0 = h // 2 - (size[0] // 2) * ry, w // 2 - (size[1] // 2) * rx
        if y0 >= 0 and x0 >= 0 and y0 + (size[0] - 1) * ry < h and x0 + (size[1] - 1) * rx < w:
            return x[..., y0 : y0 + (size[0] - 1) * ry + 1 : ry, x0 : x0 + (size[1] - 1) * rx + 1 : rx]
    gy = _axis_coords(h, size[0], x.device, x.dtype)
    gx = _axis_coords(w, size[1], x.device, x.dtype)
    grid = torch.stack(
        [gx.view(1, -1).expand(size[0], size[1]), gy.view(-1, 1).expand(size[0], size[1])], dim=-1
    ).unsqueeze(0).expand(x.shape[0], size[0], size[1], 2)
    return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=True)
