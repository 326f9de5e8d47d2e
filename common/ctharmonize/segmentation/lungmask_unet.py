"""The U-Net of lungmask (Hofmanninger et al. 2020), state-dict compatible with its weights.

A re-implementation of ``lungmask.resunet.UNet`` as configured by ``lungmask.mask.get_model``
(``depth=5, wf=6, padding=True, batch_norm=True, up_mode='upsample', residual=False``), with the
same module names so that the published ``unet_r231-*.pth`` / ``unet_ltrclobes-*.pth`` /
``unet_r231covid-*.pth`` state dicts load with ``strict=True``:

* ``down_path.{i}.block`` = Conv3x3, ReLU, BatchNorm, Conv3x3, ReLU, BatchNorm (parameter indices
  0, 2, 3, 5); every conv block also owns the unused ``residual_input_conv`` (1x1 conv) and
  ``residual_batchnorm`` of the original, which are stored in its checkpoints.
* ``up_path.{j}.up`` = (bilinear x2 upsampling, 1x1 conv) -> parameters ``up.1``;
  ``up_path.{j}.conv_block`` is a conv block; ``up_path.{j}`` also owns ``residual_input_conv`` /
  ``residual_batchnorm``.
* ``last`` = 1x1 conv to ``n_classes``; the output is log-softmax over classes.

Input (B, 1, H, W) with H, W divisible by 16, values in [0, 1] ((HU + 1024) / 1624 after
clipping to [-1024, 600] HU); output (B, n_classes, H, W) log-probabilities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LungmaskUNet"]


class _ConvBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.residual_input_conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)  # unused, kept for the keys
        self.residual_batchnorm = nn.BatchNorm2d(out_ch)  # unused, kept for the keys
        self.block = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(out_ch),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _UpBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.residual_input_conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)  # unused, kept for the keys
        self.residual_batchnorm = nn.BatchNorm2d(out_ch)  # unused, kept for the keys
        self.up = nn.Sequential(nn.Upsample(mode="bilinear", scale_factor=2), nn.Conv2d(in_ch, out_ch, kernel_size=1))
        self.conv_block = _ConvBlock(in_ch, out_ch)

    def forward(self, x: torch.Tensor, bridge: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        dy = (bridge.shape[2] - up.shape[2]) // 2
        dx = (bridge.shape[3] - up.shape[3]) // 2
        bridge = bridge[:, :, dy : dy + up.shape[2], dx : dx + up.shape[3]]
        return self.conv_block(torch.cat([up, bridge], 1))


class LungmaskUNet(nn.Module):
    """lungmask's U-Net: (B, 1, H, W) in [0, 1] -> (B, n_classes, H, W) log-probabilities."""

    def __init__(self, in_channels: int = 1, n_classes: int = 3, depth: int = 5, wf: int = 6):
        super().__init__()
        self.down_path = nn.ModuleList()
        prev = in_channels
        for i in range(depth):
            self.down_path.append(_ConvBlock(prev, 2 ** (wf + i)))
            prev = 2 ** (wf + i)
        self.up_path = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            self.up_path.append(_UpBlock(prev, 2 ** (wf + i)))
            prev = 2 ** (wf + i)
        self.last = nn.Conv2d(prev, n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bridges = []
        for i, down in enumerate(self.down_path):
            x = down(x)
            if i != len(self.down_path) - 1:
                bridges.append(x)
                x = F.avg_pool2d(x, 2)
        for i, up in enumerate(self.up_path):
            x = up(x, bridges[-i - 1])
        return F.log_softmax(self.last(x), dim=1)
