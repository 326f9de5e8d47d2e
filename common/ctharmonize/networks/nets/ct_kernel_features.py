"""CT kernel-texture feature network: a small CNN trained by the project to classify reconstruction kernels.

The default ``feature_network`` of the Gram-matrix domain/texture losses (CVS-CT, paper 002; paper 001's
texture loss) where ImageNet VGG weights are not available: its per-stage activations respond to the
noise texture and edge sharpness that distinguish kernels. :class:`~ctharmonize.networks.VGGFeatures`
remains the option for users with VGG weights. See ``docs/feature_network.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ctharmonize.errors import WeightsError
from ctharmonize.io.weights_file import load_weights_file

__all__ = ["CT_KERNEL_DOMAINS", "CTKernelFeatures", "default_weights_path", "load_ct_kernel_features"]

# the multipath generator's domain order (ctharmonize.networks.DEFAULT_DOMAINS)
CT_KERNEL_DOMAINS = ("siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard")
DEFAULT_WIDTHS = (16, 32, 64, 128)


def default_weights_path() -> Path:
    """The weights the project ships: ``ctharmonize/networks/weights/ct_kernel_features.pt``."""
    return Path(__file__).resolve().parent.parent / "weights" / "ct_kernel_features.pt"


def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """conv3x3(stride)-BN-LeakyReLU, conv3x3-BN-LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(0.2),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(0.2),
    )


class CTKernelFeatures(nn.Module):
    """Small kernel-classification CNN whose per-stage feature maps feed Gram/perceptual losses.

    ``forward(x)``: image (B, 1, H, W) in [-1, 1] (HU clipped to [-1024, 3072], ``(hu + 1024) / 2048 - 1``)
    → list of ``len(widths)`` feature maps, stage ``s`` of shape (B, widths[s], H / 2**s, W / 2**s)
    (ceil for odd sizes), the same interface as :class:`~ctharmonize.networks.VGGFeatures`.
    ``logits(x)`` → (B, len(domains)) kernel-class scores, class ``k`` = ``domains[k]``.

    Stage ``s``: conv3x3 (stride 2 for ``s > 0``)-BatchNorm-LeakyReLU(0.2), conv3x3-BatchNorm-LeakyReLU.
    The head is global average pooling of the last stage + a linear layer. BatchNorm (not instance norm)
    keeps the absolute noise level, which is part of a kernel's texture. TorchScript-able.

    Args:
        domains: kernel domain names, the class order of ``logits``.
        widths: channels of each stage.
        frozen: ``requires_grad_(False)`` and eval mode (as a loss network; gradients still flow
            to the input). :meth:`pretrained` returns a frozen network.
    """

    def __init__(self, domains: Sequence[str] = CT_KERNEL_DOMAINS, widths: Sequence[int] = DEFAULT_WIDTHS,
                 frozen: bool = False):
        super().__init__()
        if not domains or not widths:
            raise ValueError("CTKernelFeatures needs at least one domain and one stage")
        self.domains = [str(d) for d in domains]
        self.widths = [int(w) for w in widths]
        stages = []
        in_ch = 1
        for s, width in enumerate(self.widths):
            stages.append(_stage(in_ch, width, 1 if s == 0 else 2))
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(in_ch, len(self.domains))
        if frozen:
            self.requires_grad_(False)
            self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    @torch.jit.export
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [-1, 1] → (B, n_domains) unnormalised class scores."""
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean(dim=(2, 3)))

    @torch.jit.export
    def logits_from_features(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The class scores from ``forward``'s output (avoids a second pass)."""
        return self.head(features[-1].mean(dim=(2, 3)))

    @classmethod
    def pretrained(cls, path: str | os.PathLike | None = None) -> CTKernelFeatures:
        """The frozen network with the weights the project ships (``path=None``) or a user's file.

        Accepts a plain ``state_dict()`` of the default architecture or the shipped form
        ``{"state_dict": ..., "domains": [...], "widths": [...], ...}``. Raises a one-line
        :class:`~ctharmonize.errors.WeightsError` naming the file when it is missing, unreadable or
        made for another architecture.
        """
        return load_ct_kernel_features(path)


def _check_state(network: nn.Module, state: Mapping[str, Any], path: Path) -> None:
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad = [k for k, v in own.items() if k in state and (not isinstance(state[k], torch.Tensor)
                                                         or tuple(state[k].shape) != tuple(v.shape))]
    if missing or unexpected or bad:
        parts = []
        if bad:
            parts.append(f"{len(bad)} tensors of another shape (e.g. {bad[0]})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise WeightsError(path, "weights do not match the CTKernelFeatures: " + "; ".join(parts))


def load_ct_kernel_features(path: str | os.PathLike | None = None) -> CTKernelFeatures:
    """Frozen :class:`CTKernelFeatures` with the shipped weights (``path=None``) or those of ``path``.

    See :meth:`CTKernelFeatures.pretrained`.
    """
    path = default_weights_path() if path is None else Path(path)
    obj = load_weights_file(path, "CT kernel feature network weights not found"
                            + (" (the package is incomplete: reinstall ctharmonize or train one with "
                               "`ctharmonize train-feature-net`)" if path == default_weights_path() else ""))
    domains: Sequence[str] = CT_KERNEL_DOMAINS
    widths: Sequence[int] = DEFAULT_WIDTHS
    state: Any = obj
    if isinstance(obj.get("state_dict"), Mapping):
        state = obj["state_dict"]
        domains = obj.get("domains", domains)
        widths = obj.get("widths", widths)
        if not (isinstance(domains, list | tuple) and all(isinstance(d, str) for d in domains) and domains):
            raise WeightsError(path, "its 'domains' entry is not a list of kernel names")
        if not (isinstance(widths, list | tuple) and all(isinstance(w, int) and w > 0 for w in widths) and widths):
            raise WeightsError(path, "its 'widths' entry is not a list of positive integers")
    if not isinstance(state, Mapping) or not state:
        raise WeightsError(path, "the weights file holds no tensors")
    state = {k.removeprefix("module.") if isinstance(k, str) else k: v for k, v in state.items()}
    network = CTKernelFeatures(domains, widths)
    _check_state(network, state, path)
    network.load_state_dict(state)
    network.requires_grad_(False)
    network.eval()
    return network
