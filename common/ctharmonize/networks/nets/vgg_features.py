"""VGG16/19 convolutional feature extractor for Gram/perceptual losses, weights from a user-given file."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from ctharmonize.errors import WeightsError
from ctharmonize.io.weights_file import load_weights_file

__all__ = ["VGG_CONFIGS", "VGGFeatures", "vgg_layer_names"]

# torchvision's "D" (VGG16) and "E" (VGG19) configurations: conv widths, "M" = 2×2 max-pool
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(arch: str = "vgg19") -> list[str]:
    """Names of the layers of ``features`` in order: ``conv1_1, relu1_1, ..., pool1, conv2_1, ...``.

    Index i of this list is torchvision's ``features.{i}`` (e.g. VGG19 ``relu4_1`` = 20).
    """
    if arch not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG architecture {arch!r}; expected one of {', '.join(VGG_CONFIGS)}")
    names, block, conv = [], 1, 1
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


class VGGFeatures(nn.Module):
    """Frozen VGG conv stack returning the activations of chosen layers.

    ``forward(x)``: image (B, 1 or 3, H, W) in [-1, 1] → list of feature maps, one per entry of
    ``layers`` in network order. The image is mapped to [0, 1], a 1-channel image repeated to
    RGB, and ImageNet mean/std applied (``imagenet_normalize``), as the ImageNet weights expect.

    Args:
        weights_path: torchvision-compatible state dict (``features.{i}.weight``/``bias``; a whole
            ``vgg19-*.pth`` works, ``classifier.*`` keys are ignored; a ``{"state_dict": ...}`` wrapper
            and a ``module.`` prefix are accepted). ``None`` leaves random weights (tests only).
        arch: ``"vgg16"`` or ``"vgg19"``.
        layers: layer names from :func:`vgg_layer_names`; default the Gatys style layers
            ``relu1_1 … relu5_1``. Only layers up to the deepest requested one are built.
        imagenet_normalize: apply the [-1, 1] → ImageNet input mapping described above.

    Raises :class:`~ctharmonize.errors.WeightsError` when the file is missing, unreadable or does
    not match the architecture. Parameters have ``requires_grad=False``; gradients still flow to
    the input, as a loss needs.
    """

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        arch: str = "vgg19",
        layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        imagenet_normalize: bool = True,
    ):
        super().__init__()
        names = vgg_layer_names(arch)
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [name for name in layers if name not in names]
        if unknown or not layers:
            raise ValueError(f"unknown {arch} layer(s) {unknown or layers}; expected names like {names[:4]}")
        self.arch = arch
        self.layer_names = sorted(set(layers), key=names.index)
        self.capture = [names.index(name) for name in self.layer_names]
        modules: list[nn.Module] = []
        in_ch = 3
        for item in VGG_CONFIGS[arch]:
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = int(item)
        self.features = nn.Sequential(*modules[: max(self.capture) + 1])
        self.imagenet_normalize = imagenet_normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights_path is not None:
            self.load_weights(weights_path)
        self.requires_grad_(False)
        self.eval()

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load ``features.*`` tensors from a torchvision-compatible file (see class docstring)."""
        path = os.fspath(path)
        state = load_weights_file(path, f"{self.arch} weights file not found", unwrap_state_dict=True)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        wanted = {f"features.{k}": v for k, v in self.features.state_dict().items()}
        missing = [k for k in wanted if k not in state]
        if missing:
            raise WeightsError(
                path, f"not a torchvision {self.arch} state dict: missing {', '.join(missing[:3])}"
                + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            )
        for key, ref in wanted.items():
            value = state[key]
            if not isinstance(value, torch.Tensor) or value.shape != ref.shape:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise WeightsError(path, f"{key} has shape {shape}, {self.arch} needs {tuple(ref.shape)}")
        self.features.load_state_dict({k.removeprefix("features."): state[k] for k in wanted})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.imagenet_normalize:
            x = (x + 1.0) * 0.5
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = (x - self.mean) / self.std
        out: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.capture:
                out.append(x)
        return out
