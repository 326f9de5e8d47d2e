"""Per-domain tissue segmenter S / Q of paper 004 (Fig. 4A): MONAI's 2-D BasicUNet, C class logits out."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import BasicUNet
from torch import nn

__all__ = ["CHEST_CT_TISSUE_CLASSES", "TissueSegmenter"]

#: Default label set for chest CT (issue 16): structures whose shape does not change with the kernel.
#: Emphysema / LAA masks and intrapulmonary vessels are deliberately absent (they would leak the kernel).
CHEST_CT_TISSUE_CLASSES: tuple[str, ...] = (
    "background", "lungs", "airway", "skeletal_muscle", "fat", "bone", "mediastinum",
)


class TissueSegmenter(nn.Module):
    """Image (B, in_channels, H, W) in [-1, 1] → class logits (B, num_classes, H, W) (no activation).

    A thin wrapper around ``monai.networks.nets.BasicUNet(spatial_dims=2)`` (4 max-pool levels,
    ``features`` = the five encoder widths and the last decoder width; instance norm with affine and
    LeakyReLU(0.1) by default, deconv upsampling). ``probabilities(x)`` is the softmax over classes,
    what the semantic extractor takes. One segmenter per domain: S on the source, Q on the target.
    ``num_classes`` defaults to the 7 :data:`CHEST_CT_TISSUE_CLASSES`. H, W multiples of
    ``spatial_multiple`` = 16 (BasicUNet pads odd sizes, but its skips then misalign by a pixel).
    TorchScript-able (``probabilities`` included).

    Parameters (1 input channel, 7 classes): default widths (32, 32, 64, 128, 256, 32) 1,978,631;
    Ronneberger's (64, 128, 256, 512, 1024, 64) 31,112,455; CPU demo (8, 8, 16, 32, 64, 8) 124,679.
    """

    def __init__(
        self, num_classes: int = len(CHEST_CT_TISSUE_CLASSES), in_channels: int = 1,
        features: Sequence[int] = (32, 32, 64, 128, 256, 32),
        norm: str | tuple = ("instance", {"affine": True}), dropout: float = 0.0, upsample: str = "deconv",
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background and at least one tissue), got {num_classes}")
        self.unet = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes,
                              features=tuple(features), norm=norm, dropout=dropout, upsample=upsample)
        self.num_classes = num_classes
        self.spatial_multiple = 16  # an instance attribute, so that a scripted module keeps it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

    @torch.jit.export
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the class axis: (B, num_classes, H, W) in [0, 1], summing to 1 per pixel."""
        return torch.softmax(self.unet(x), dim=1)
