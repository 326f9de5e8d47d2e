"""Spectral-normalized PatchGAN discriminator of paper 004 (Fig. 5): 34×34 receptive field, no norm layers."""

from __future__ import annotations

from monai.networks.utils import normal_init
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ctharmonize.networks.nets.patch_discriminator import patch_receptive_field

__all__ = ["SpectralPatchDiscriminator"]


class SpectralPatchDiscriminator(nn.Sequential):
    """Image (B, in_channels, H, W) in [-1, 1] → real/fake score map (B, 1, H/2^n - 2, W/2^n - 2), raw (LSGAN).

    4×4 convs, padding 1, each wrapped in ``torch.nn.utils.parametrizations.spectral_norm`` (Miyato et
    al. 2018; one power iteration per training-mode forward): in → ndf stride 2, then ``n_layers - 1``
    stride-2 convs doubling the width (capped at 8·ndf), one stride-1 conv doubling it, each followed by
    LeakyReLU(0.2), then a stride-1 conv to 1 channel. No normalization layers (spectral norm replaces
    them). ``n_layers = 2`` (default) gives 1 → 64 → 128 → 256 → 1 and strides 2, 2, 1, 1: each output
    sees exactly a **34×34** input patch (``receptive_field``; 256² → 62×62 scores); ``n_layers = 3`` is
    the 70×70 pix2pix layout. ``init``: ``"normal"`` N(0, 0.02), zero bias (applied before spectral
    norm) or ``"pytorch"``. Spectral norm is on every conv, the last included (the authors' code leaves
    the last one plain). Not TorchScript-able while parametrized (training only); remove the
    parametrizations (``torch.nn.utils.parametrize.remove_parametrizations``) to script it.

    Parameters (1 channel): ndf 64: 660,929; CPU demo ndf 16: 42,353.
    """

    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 2, init: str = "normal"):
        if init not in ("normal", "pytorch"):
            raise ValueError(f"init must be 'normal' or 'pytorch', got {init!r}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        widths = [in_channels, ndf] + [ndf * min(2**n, 8) for n in range(1, n_layers + 1)] + [1]
        strides = [2] * n_layers + [1, 1]
        layers: list[nn.Module] = []
        for i, stride in enumerate(strides):
            conv = nn.Conv2d(widths[i], widths[i + 1], 4, stride=stride, padding=1)
            if init == "normal":
                normal_init(conv)
            layers.append(spectral_norm(conv))
            if i < len(strides) - 1:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
        super().__init__(*layers)
        self.receptive_field = patch_receptive_field(n_layers)
