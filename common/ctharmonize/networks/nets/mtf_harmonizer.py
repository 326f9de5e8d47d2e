"""Physics-informed MTF-conditioned harmonizer of paper 001: I_h = O(F⁻¹(Λ(F(Γ(I_nh)), Ω(MTF2D))))."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.networks.nets import AttentionUnet
from torch import nn

from ctharmonize.errors import WeightsError
from ctharmonize.io.weights_file import load_weights_file
from ctharmonize.networks.blocks.attention_output_head import AttentionOutputHead
from ctharmonize.networks.blocks.frequency_mixing import FrequencyMixing
from ctharmonize.networks.nets.mtf_encoder import MTFEncoder

__all__ = ["PAPER_001_CHANNELS", "MTFHarmonizer"]

#: Γ widths giving ≈ 26.5 M parameters in total, the paper's size ("26.5 million parameters in our model")
PAPER_001_CHANNELS = (58, 116, 232, 464, 928)


def xavier_init(module: nn.Module) -> None:
    """``xavier_uniform_`` conv weights and zero biases (paper 001: "Xavier method"); norms keep (1, 0)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MTFHarmonizer(nn.Module):
    """G_θ of paper 001 eq. 3: ``forward(x, mtf2d)`` → harmonized slice (B, 1, H, W).

    ``x``: I_nh (B, 1, H, W) in [-1, 1] (network space), H and W multiples of ``spatial_multiple``.
    ``mtf2d``: (B or 1, 1, 64, 64), the scanner's 2D MTF, fftshift-centred, in the image's own
    frequency band (:func:`ctharmonize.simulation.mtf2d.kernel_mtf2d`, or measured). Output in
    [-1, 1] in eval mode (``output="clamp"``: linear while training, see
    :class:`~ctharmonize.networks.blocks.AttentionOutputHead`); the target is the noise-free,
    blur-free ground truth.

    - Γ: MONAI ``AttentionUnet(2, 1, gamma_channels, channels, strides=2…)`` (Oktay attention gates on
      the skips) → (B, C_γ, H, W).
    - Ω: :class:`~ctharmonize.networks.MTFEncoder` → (B, C_ω, H, W) on the centred frequency grid.
    - F, Λ, F⁻¹: :class:`~ctharmonize.networks.blocks.FrequencyMixing` → (B, C_γ, H, W) real.
    - O: :class:`~ctharmonize.networks.blocks.AttentionOutputHead` (attention link from ``x``, two convs).

    Weights are Xavier-uniform (paper) except Λ (``lambda_init``, default identity) and whatever
    ``encoder_weights`` loads. ImageNet encoder weights are not reachable here: the default trains Γ from
    scratch; ``encoder_weights`` is a user path to a state dict for Γ (see :meth:`load_encoder_weights`).
    TorchScript-able. Paper size: ``channels=PAPER_001_CHANNELS`` ≈ 26.5 M parameters (docs/networks.md).
    """

    def __init__(self, channels: Sequence[int] = PAPER_001_CHANNELS, gamma_channels: int = 8,
                 mtf_channels: int = 8, mtf_hidden: int = 8, mtf_strides: Sequence[int] = (2, 4),
                 lambda_kernel: int = 3, multiplicative: bool = False, lambda_init: str = "identity",
                 head_hidden: int = 32, attention_channels: int = 8, output: str = "clamp",
                 residual: bool = False, encoder_weights: str | os.PathLike | None = None,
                 encoder_prefix: str = ""):
        super().__init__()
        if len(channels) < 2:
            raise ValueError("MTFHarmonizer needs at least two U-Net levels")
        self.channels = [int(c) for c in channels]
        self.spatial_multiple = 2 ** (len(self.channels) - 1)
        self.gamma = AttentionUnet(spatial_dims=2, in_channels=1, out_channels=gamma_channels,
                                   channels=self.channels, strides=[2] * (len(self.channels) - 1))
        self.omega = MTFEncoder(out_channels=mtf_channels, hidden=mtf_hidden, strides=mtf_strides)
        self.mixing = FrequencyMixing(gamma_channels, mtf_channels, kernel_size=lambda_kernel,
                                      multiplicative=multiplicative, init=lambda_init)
        self.head = AttentionOutputHead(in_channels=gamma_channels, hidden=head_hidden,
                                        attention_channels=attention_channels, output=output, residual=residual)
        for part in (self.gamma, self.omega, self.head):
            part.apply(xavier_init)
        if encoder_weights is not None:
            self.load_encoder_weights(encoder_weights, encoder_prefix)

    @torch.jit.unused
    def load_encoder_weights(self, path: str | os.PathLike, prefix: str = "") -> int:
        """Load a user's state dict into Γ; returns how many tensors were loaded.

        The file: a ``state_dict`` (or ``{"state_dict": ...}``) whose keys, after removing ``module.`` and
        ``prefix``, are Γ's (MONAI ``AttentionUnet`` names, e.g. ``model.0.conv.0.conv.weight``). Keys with
        the same name and shape load; the rest keep their init (so an encoder-only file initialises the
        encoder). :class:`~ctharmonize.errors.WeightsError` if nothing matches.
        """
        path = Path(path)
        state = load_weights_file(path, "encoder weights not found", unwrap_state_dict=True)
        own = self.gamma.state_dict()
        matched = {}
        for key, value in state.items():
            name = key.removeprefix("module.") if isinstance(key, str) else key
            if isinstance(name, str) and prefix:
                if not name.startswith(prefix):
                    continue
                name = name[len(prefix):]
            if name in own and isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(own[name].shape):
                matched[name] = value
        if not matched:
            raise WeightsError(path, "no tensor matches the harmonizer's U-Net (AttentionUnet) by name and shape")
        self.gamma.load_state_dict(matched, strict=False)
        return len(matched)

    def forward(self, x: torch.Tensor, mtf2d: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError("expected a slice batch of shape (B, 1, H, W)")
        h, w = x.shape[-2], x.shape[-1]
        if h % self.spatial_multiple != 0 or w % self.spatial_multiple != 0:
            raise ValueError(f"H and W must be multiples of {self.spatial_multiple}")
        if mtf2d.shape[0] == 1 and x.shape[0] != 1:
            mtf2d = mtf2d.expand(x.shape[0], -1, -1, -1)
        features = self.gamma(x)
        omega = self.omega(mtf2d.to(features.dtype), [h, w])
        return self.head(self.mixing(features, omega), x)
